#!/usr/bin/env python3
# bench/serve/measure_serve_overhead.py: the CPU cost of `heapsight record
# --serve` in sampling mode (HEAPSIGHT_SAMPLE_BYTES=524288) with a scraper,
# against the plain program (docs/performance.md). Runs alternate plain
# and traced; CPU = user + sys of everything the run started (the program,
# and for traced runs the record process too), from wait4's rusage. The
# scraper (this script) reads /metrics every second and the heap profile
# every 10 s, as Prometheus and a continuous profiler would, and logs the
# record process's RSS (heapsight_record_rss_bytes) over time.
#   measure_serve_overhead.py HEAPSIGHT REQUESTS ROUNDS [VARIANTS]
# VARIANTS (comma-separated, default all): plain, sampled, flushed (sampled +
# HEAPSIGHT_FLUSH_MS=1000, what --serve sets, trace written, nothing
# served), served, and thread (served, plus an LD_PRELOADed library whose
# constructor starts one glibc thread that only sleeps: what the writer
# cost the host while it was a pthread, before issue 19's raw task). Each
# round runs every variant once, in order; the load average is printed
# before each run (the machine is shared).
import os
import re
import resource
import subprocess
import sys
import threading
import time
import urllib.request

HEAPSIGHT = sys.argv[1]
REQUESTS = sys.argv[2] if len(sys.argv) > 2 else "300000"
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 2
VARIANTS = (sys.argv[4].split(",") if len(sys.argv) > 4
            else ["plain", "sampled", "flushed", "served", "thread"])
WORKLOAD = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         "service_workload.py"), REQUESTS]


ONE_THREAD_C = r"""
#include <pthread.h>
#include <unistd.h>
static void* Sleep(void* arg) { for (;;) pause(); return arg; }
__attribute__((constructor)) static void Start(void) {
  pthread_t t;
  pthread_create(&t, 0, Sleep, 0);
}
"""


def one_thread_library():
    """Builds /tmp/heapsight_one_thread.so (a sleeping glibc thread) once."""
    path = "/tmp/heapsight_one_thread.so"
    if not os.path.exists(path):
        src = path[:-3] + ".c"
        with open(src, "w") as f:
            f.write(ONE_THREAD_C)
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", path, src, "-lpthread"],
                       check=True)
    return path


def run(args, scrape, env=None):
    start = time.time()
    record_cpu = [0.0]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    rss = []
    scrapes = 0
    if scrape:
        addr = None
        for line in proc.stderr:
            m = re.search(rb"serving (http://\S+)", line)
            if m:
                addr = m.group(1).decode()
                break

        def scraper():
            nonlocal scrapes
            n = 0
            while proc.poll() is None:
                try:
                    text = urllib.request.urlopen(addr + "/metrics", timeout=10).read().decode()
                    m = re.search(r"^heapsight_record_rss_bytes (\d+)", text, re.M)
                    if m:
                        rss.append((round(time.time() - start), int(m.group(1))))
                    m = re.search(r"^heapsight_record_cpu_seconds_total (\S+)", text, re.M)
                    if m:
                        record_cpu[0] = float(m.group(1))
                    if n % 10 == 0:
                        urllib.request.urlopen(addr + "/debug/pprof/heap", timeout=30).read()
                    scrapes += 1
                except OSError:
                    pass
                n += 1
                time.sleep(1)

        t = threading.Thread(target=scraper, daemon=True)
        t.start()
    proc.stderr.read() if proc.stderr else None
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - start
    return usage.ru_utime + usage.ru_stime, wall, rss, scrapes, record_cpu[0]


def main():
    # sampled: the preload in sampling mode, trace written, nothing served;
    # served: the same with --serve, --no-trace and the scraper.
    sampled = [HEAPSIGHT, "record", "--no-leak-summary", "-o", "/tmp",
               "--option", "SAMPLE_BYTES=524288", "--"] + WORKLOAD
    served = [HEAPSIGHT, "record", "--no-leak-summary", "--no-trace", "--serve", "127.0.0.1:0",
              "--option", "SAMPLE_BYTES=524288", "--"] + WORKLOAD
    flushed = [HEAPSIGHT, "record", "--no-leak-summary", "-o", "/tmp",
               "--option", "SAMPLE_BYTES=524288", "--option", "FLUSH_MS=1000", "--"] + WORKLOAD
    commands = {"plain": WORKLOAD, "sampled": sampled, "flushed": flushed, "served": served,
                "thread": served}
    envs = {}
    if "thread" in VARIANTS:
        envs["thread"] = dict(os.environ, LD_PRELOAD=one_thread_library())
    results = {k: [] for k in VARIANTS}
    record_cpu = []
    for r in range(ROUNDS):
        for kind in VARIANTS:
            load = os.getloadavg()
            serving = kind in ("served", "thread")
            cpu, wall, rss, scrapes, own = run(commands[kind], serving, envs.get(kind))
            results[kind].append(cpu)
            if kind == "served":
                record_cpu.append(own)
            print(f"round {r + 1} {kind}: cpu {cpu:.2f} s, wall {wall:.1f} s, load "
                  f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
                  + (f", {scrapes} scrapes, record process cpu {own:.2f} s, "
                     f"record RSS (s, bytes) {rss[::10] + rss[-1:]}"
                     if serving else ""), flush=True)

    def median(v):
        return sorted(v)[len(v) // 2]

    if "plain" not in results:
        return
    plain = median(results["plain"])
    for kind in VARIANTS:
        if kind == "plain":
            continue
        m = median(results[kind])
        print(f"median cpu {kind}: {m:.2f} s vs plain {plain:.2f} s: "
              f"{100 * (m - plain) / plain:+.1f}% (runs {', '.join(f'{v:.2f}' for v in results[kind])})")
    print(f"plain runs: {', '.join(f'{v:.2f}' for v in results['plain'])}")
    if record_cpu:
        print(f"median record process cpu (analysis + server): {median(record_cpu):.2f} s = "
              f"{100 * median(record_cpu) / plain:.1f}% of plain")


if __name__ == "__main__":
    main()
