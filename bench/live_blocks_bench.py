#!/usr/bin/env python3
"""bench/live_blocks_bench.py: peak RSS, plain vs under the preload (issue 15).

Workloads: bench/live_blocks_bench (20 million live blocks at once) and
python3 building and sorting a 1M-entry dict with PYTHONMALLOC=malloc. Each
is run plain and under each given preload, alternating, --runs times; the
table shows the median wall time and peak RSS (ru_maxrss of the child) and
the ratio to plain, and for the live_blocks_bench run what the tool adds
per live block. HEAPSIGHT_STATS=1 is set, so the preload's own memory
line ("memory: live table ...") of the last run is shown too.

A preload may carry HEAPSIGHT_* settings after its path, separated by
spaces: --preload "address=build/preload/libheapsight.so HEAPSIGHT_PAIRING=address".
--only python3 (or live_blocks) runs one workload; --python picks the
interpreter (default: python3 in PATH).

Usage:
  python3 bench/live_blocks_bench.py --build build-dev [--runs 3]
      [--preload "LABEL=PATH [NAME=VALUE ...]" ...] [--blocks 2e7] [--only python3]
      [--python /usr/bin/python3]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

PYTHON = ("d = {}\n"
          "for i in range(1000000):\n"
          "    d['key%d' % (i * 7919 % 1000003)] = [i, str(i)]\n"
          "items = sorted(d.items())\n"
          "print(len(items))\n")


def run(argv, env, cwd):
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _, _, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stdout.read()
    stats = [line for line in err.splitlines() if "memory:" in line]
    return wall, usage.ru_maxrss * 1024, stats


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--blocks", default="2e7")
    ap.add_argument("--only", choices=["live_blocks", "python3"])
    ap.add_argument("--python", default="python3")
    ap.add_argument("--preload", action="append", default=[],
                    help="LABEL=PATH of a libheapsight.so (default: the build's)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    preloads = []
    for spec in args.preload or ["heapsight=" + os.path.join(build, "preload", "libheapsight.so")]:
        words = spec.split()
        label, path = words[0].split("=", 1)
        preloads.append([label, (os.path.abspath(path), dict(w.split("=", 1) for w in words[1:]))])
    bench = os.path.join(build, "bench", "live_blocks_bench")
    # (name, argv, environment, live blocks at the peak or None)
    workloads = [("live_blocks_bench --blocks " + args.blocks,
                  [bench, "--blocks", args.blocks], {}, float(args.blocks)),
                 ("python3 1M-entry dict, PYTHONMALLOC=malloc", [args.python, "-c", PYTHON],
                  {"PYTHONMALLOC": "malloc"}, None)]
    if args.only:
        workloads = [w for w in workloads if w[0].startswith(args.only)]
    if any(w[1][0] == bench for w in workloads) and not os.path.exists(bench):
        sys.exit("live_blocks_bench not built (ninja -C {} bench/live_blocks_bench)".format(build))
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith("HEAPSIGHT_") and k != "LD_PRELOAD"}
    print("| workload | tool | wall s | peak RSS MiB | RSS / plain | extra bytes per live block |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for name, argv, extra, blocks in workloads:
            tools = [("plain", None)] + [(label, path) for label, path in preloads]
            results = {label: [] for label, _ in tools}
            stats = {}
            for _ in range(args.runs):
                for label, path in tools:
                    env = dict(base_env, **extra)
                    if path:
                        env.update(LD_PRELOAD=path[0], HEAPSIGHT_STATS="1",
                                   HEAPSIGHT_OUTPUT=os.path.join(work, "t.%p.hst"), **path[1])
                    wall, rss, st = run(argv, env, work)
                    results[label].append((wall, rss))
                    stats[label] = st
                    for f in os.listdir(work):
                        os.remove(os.path.join(work, f))
            plain_rss = statistics.median(r for _, r in results["plain"])
            for label, _ in tools:
                wall = statistics.median(w for w, _ in results[label])
                rss = statistics.median(r for _, r in results[label])
                # Everything the tool adds at the peak, per live block (for the
                # workload whose live block count is known).
                per_block = "{:.1f}".format((rss - plain_rss) / blocks) if blocks else "-"
                print("| {} | {} | {:.2f} | {:.0f} | {:.2f}x | {} |".format(
                    name, label, wall, rss / 2**20, rss / plain_rss, per_block))
            for label, st in stats.items():
                for line in st:
                    print("  {}: {}".format(label, line.strip()))


if __name__ == "__main__":
    main()
