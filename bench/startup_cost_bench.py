#!/usr/bin/env python3
"""What heapsight costs a thread, and a short process, before its events.

Three rows, each run plain and under one or more preloads, the
configurations interleaved run by run (plain, A, B, then B, A, plain, ...),
so a noisy machine's drift falls on all of them alike:

  pool   bench/thread_pool_bench 200 40: 200 threads of 40 allocations each,
         all alive at once (a service's worker pool)
  sort   `sort /dev/null`: one short process (a pipeline's stage)
  loop   bash: 300 x `echo $i | sort | wc -l` (1,503 short processes)

Each run's user + system CPU time comes from wait4() (children included:
the loop's pipelines), its wall time from this process's clock, its minor
page faults and peak RSS from GNU time (/usr/bin/time) around the command. Prints one markdown table: means and medians, and each
preload's part (its CPU less plain's).

Usage: python3 bench/startup_cost_bench.py --build build [--runs 30]
       [--rows pool,sort,loop] [--preload NAME=PATH ...] [--env NAME=VALUE ...]
--preload defaults to heapsight=BUILD/preload/libheapsight.so; give it twice
to compare two builds (e.g. before=/tmp/old.so after=build/preload/...).
--env sets a HEAPSIGHT_* variable for the preloaded runs (e.g.
HEAPSIGHT_PAIRING=address). Timing stays out of `meson test`: this is a
benchmark (docs/performance.md, "What a thread and a short process pay
before their events").
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

LOOP = "for i in $(seq 300); do echo $i | sort | wc -l; done"


GNU_TIME = "/usr/bin/time"


def run_once(argv, env, out_dir):
    """Runs argv with env; returns (cpu_s, wall_s, minor_faults, maxrss_kb).

    CPU and wall come from wait4() on a forked child, which includes a
    constant (this Python process's fork and exec) that the "over plain"
    column cancels. Faults and peak RSS come from GNU time around the
    command, so they are the command's own (a forked child of this process
    would count Python's pages in both); without GNU time, wait4's.
    """
    report = os.path.join(out_dir, "time.txt")
    use_time = os.access(GNU_TIME, os.X_OK)
    full = [GNU_TIME, "-f", "%R %M", "-o", report] + argv if use_time else argv
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            fd = os.open(os.devnull, os.O_RDWR)
            os.dup2(fd, 0)
            os.dup2(fd, 1)
            os.execve(full[0], full, env)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - start
    faults, maxrss = usage.ru_minflt, usage.ru_maxrss
    if use_time:
        with open(report) as f:
            fields = f.read().split()
        faults, maxrss = int(fields[-2]), int(fields[-1])
    for name in os.listdir(out_dir):
        os.unlink(os.path.join(out_dir, name))
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        sys.exit("startup_cost_bench: %s failed (status %d)" % (" ".join(argv), status))
    return (usage.ru_utime + usage.ru_stime, wall, faults, maxrss)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="meson build directory")
    ap.add_argument("--runs", type=int, default=30, help="runs per configuration and row")
    ap.add_argument("--rows", default="pool,sort,loop")
    ap.add_argument("--preload", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args()

    build = os.path.abspath(args.build)
    preloads = []
    for spec in args.preload or ["heapsight=" + os.path.join(build, "preload/libheapsight.so")]:
        name, _, path = spec.partition("=")
        if not os.path.exists(path):
            sys.exit("startup_cost_bench: no preload at %s" % path)
        preloads.append((name, os.path.abspath(path)))
    extra_env = dict(e.split("=", 1) for e in args.env)

    pool = os.path.join(build, "bench/thread_pool_bench")
    rows = {
        "pool": ("200 threads x 40 allocations (thread_pool_bench)", [pool, "200", "40"]),
        "sort": ("sort /dev/null (one short process)", [shutil.which("sort"), "/dev/null"]),
        "loop": ("bash: 300 x `echo $i \\| sort \\| wc -l` (1,503 processes)",
                 [shutil.which("bash"), "-c", LOOP]),
    }
    wanted = [r for r in args.rows.split(",") if r]
    for r in wanted:
        if r not in rows:
            sys.exit("startup_cost_bench: unknown row %s (pool, sort, loop)" % r)
        if rows[r][1][0] is None or not os.path.exists(rows[r][1][0]):
            sys.exit("startup_cost_bench: %s: missing %s (build bench/)" % (r, rows[r][1][0]))

    out_dir = tempfile.mkdtemp(prefix="startup_cost_")
    configs = [("plain", None)] + preloads
    print("Measured %s UTC, %d runs per configuration, interleaved; load average %.1f"
          % (time.strftime("%Y-%m-%d %H:%M", time.gmtime()), args.runs, os.getloadavg()[0]))
    print()
    print("| row | configuration | CPU ms mean | median | wall ms mean | minor faults | "
          "peak RSS MB | CPU over plain (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    try:
        for r in wanted:
            label, argv = rows[r]
            results = {name: [] for name, _ in configs}
            for run in range(args.runs):
                order = configs if run % 2 == 0 else list(reversed(configs))
                for name, so in order:
                    env = dict(os.environ)
                    if so is not None:
                        env.update(extra_env)
                        env["LD_PRELOAD"] = so
                        env["HEAPSIGHT_OUTPUT"] = os.path.join(out_dir, "t.%p.hst")
                    results[name].append(run_once(argv, env, out_dir))
            plain_cpu = statistics.mean(x[0] for x in results["plain"])
            for name, _ in configs:
                v = results[name]
                cpu = [x[0] * 1e3 for x in v]
                over = "-" if name == "plain" else "%.1f" % (statistics.mean(cpu) - plain_cpu * 1e3)
                print("| %s | %s | %.1f | %.1f | %.1f | %.0f | %.1f | %s |" % (
                    label, name, statistics.mean(cpu), statistics.median(cpu),
                    statistics.mean(x[1] * 1e3 for x in v), statistics.mean(x[2] for x in v),
                    max(x[3] for x in v) / 1024.0, over))
            sys.stdout.flush()
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
