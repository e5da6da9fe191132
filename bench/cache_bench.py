#!/usr/bin/env python3
"""bench/cache_bench.py: the analysis cache, cold against warm (issue 16).

Records two real programs once: GCC's cc1plus compiling
bench/compile_workload.cc at -O2 (preprocessed, one process) and a python3
dict build with sorts under PYTHONMALLOC=malloc. Then, for `report`,
`leaks` and `html` on each trace, measures wall time:
  - no cache    (--no-cache: what every command cost before the cache),
  - cold        (no cache file yet: the analysis plus writing the cache),
  - warm        (the cache file of a previous command answers).
With --callgrind it also counts instructions (valgrind --tool=callgrind)
of one cold and one warm `report`. Prints a Markdown table; with
--write-doc FILE it replaces the block between `<!-- cache-bench:begin -->`
and `<!-- cache-bench:end -->` of FILE.

Usage (from the repo root, after `ninja -C build-dev`):
  python3 bench/cache_bench.py --build build-dev [--runs 3] [--callgrind]
"""

import argparse
import datetime
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_bench  # noqa: E402  (measure, median_run, machine_info, ...)

PYTHON_WORKLOAD = (
    "d = {}\n"
    "for i in range(400000):\n"
    "    d['key%d' % i] = [i, str(i)]\n"
    "ks = sorted(d, key=lambda k: d[k][1])\n"
    "vs = sorted(d.values(), key=lambda v: -v[0])\n")


def record(heapsight, argv, work, name, env_extra=None):
    out = os.path.join(work, name + ".%p.hst")
    run = run_bench.measure([heapsight, "record", "-q", "-o", out, "--"] + argv, work,
                            env_extra=env_extra)
    traces = sorted(f for f in os.listdir(work) if f.startswith(name + ".") and f.endswith(".hst"))
    if run.rc != 0 or not traces:
        sys.exit("cache_bench: recording %s failed: %s" % (name, run.stderr[-2000:]))
    # The largest trace is the program's (a wrapper script has small ones).
    return max((os.path.join(work, t) for t in traces), key=os.path.getsize)


def command(heapsight, cmd, trace, work, extra=()):
    argv = [heapsight, cmd] + list(extra) + [trace]
    if cmd == "html":
        argv += ["-o", os.path.join(work, "out.html")]
    return argv


def remove_cache(trace):
    directory = os.path.dirname(trace)
    base = os.path.basename(trace)
    for f in os.listdir(directory):
        if f.startswith(base + ".") and f.endswith(".cache"):
            os.unlink(os.path.join(directory, f))


def timed(argv, work, runs, before=None):
    results = []
    for _ in range(runs):
        if before:
            before()
        run = run_bench.measure(argv, work)
        if run.rc != 0:
            sys.exit("cache_bench: %s failed: %s" % (" ".join(argv), run.stderr[-2000:]))
        results.append(run)
    return run_bench.median_run(results)


def callgrind(argv, work):
    out = os.path.join(work, "callgrind.out")
    run = run_bench.measure(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv,
                            work)
    for line in run.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1].strip())
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build-dev")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--write-doc")
    args = parser.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    heapsight = os.path.abspath(os.path.join(args.build, "cli", "heapsight"))
    cc1plus = subprocess.run(["g++", "-print-prog-name=cc1plus"], capture_output=True,
                             text=True).stdout.strip()
    python = subprocess.run(["python3", "-c", "import sys; print(sys.executable)"],
                            capture_output=True, text=True).stdout.strip()
    python = os.path.realpath(python)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cache_bench.") as work:
        ii = os.path.join(work, "workload.ii")
        subprocess.run(["g++", "-std=c++17", "-E", os.path.join(repo, "bench", "compile_workload.cc"),
                        "-o", ii], check=True)
        workloads = [
            ("cc1plus -O2", record(heapsight, [cc1plus, "-fpreprocessed", "-quiet", "-O2", ii,
                                               "-o", "/dev/null"], work, "cc1plus")),
        ]
        script = os.path.join(work, "dicts.py")
        with open(script, "w") as f:
            f.write(PYTHON_WORKLOAD)
        workloads.append(("python3 dicts", record(heapsight, [python, script], work, "python",
                                                  env_extra={"PYTHONMALLOC": "malloc"})))
        for label, trace in workloads:
            size = os.path.getsize(trace)
            for cmd in ("report", "leaks", "html"):
                nocache = timed(command(heapsight, cmd, trace, work, ["--no-cache"]), work, args.runs)
                cold = timed(command(heapsight, cmd, trace, work), work, args.runs,
                             before=lambda: remove_cache(trace))
                warm = timed(command(heapsight, cmd, trace, work), work, args.runs)
                cache_bytes = sum(os.path.getsize(os.path.join(work, f)) for f in os.listdir(work)
                                  if f.startswith(os.path.basename(trace)) and f.endswith(".cache"))
                rows.append((label, size, cmd, nocache, cold, warm, cache_bytes))
            if args.callgrind:
                argv = command(heapsight, "report", trace, work)
                remove_cache(trace)
                cold_ir = callgrind(argv, work)
                warm_ir = callgrind(argv, work)
                nocache_ir = callgrind(command(heapsight, "report", trace, work, ["--no-cache"]), work)
                rows.append((label, size, "report (callgrind Ir)", nocache_ir, cold_ir, warm_ir, None))
    model, cores, mem = run_bench.machine_info()
    lines = [
        "Measured %s on %s (%s cores, %s RAM), median of %d runs; heapsight %s." % (
            datetime.date.today().isoformat(), model, cores, mem, args.runs,
            run_bench.git_commit(repo)),
        "",
        "| trace | command | no cache | cold (analyze + write cache) | warm (from cache) | warm / no cache | cache file |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, size, cmd, nocache, cold, warm, cache_bytes in rows:
        name = "%s (%.1f MB trace)" % (label, size / 1e6)
        if isinstance(nocache, int) or nocache is None:
            fmt = lambda n: "{:,} Ir".format(n) if n else "-"
            ratio = "%.1f%%" % (100.0 * warm / nocache) if warm and nocache else "-"
            lines.append("| %s | %s | %s | %s | %s | %s | |" % (name, cmd, fmt(nocache), fmt(cold),
                                                             fmt(warm), ratio))
            continue
        # Wall only: ru_maxrss of a child started from this (large) Python
        # process keeps the parent's high-water mark, so it is not the
        # command's own peak.
        fmt = lambda r: "%.2f s" % r.wall
        lines.append("| %s | %s | %s | %s | %s | %.0f%% | %s |" % (
            name, cmd, fmt(nocache), fmt(cold), fmt(warm), 100.0 * warm.wall / nocache.wall,
            "{:,} B".format(cache_bytes)))
    run_bench.publish(lines, args.write_doc, "cache-bench")


if __name__ == "__main__":
    main()
