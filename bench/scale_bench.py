#!/usr/bin/env python3
"""bench/scale_bench.py: the analyzer's time and peak RSS against trace size.

Generates synthetic traces (bench/synthetic_trace: 4 threads, 256 live
blocks, any length) of the given sizes in a scratch directory, runs
`heapsight report` on each under /usr/bin/time (wall, CPU, peak RSS) and
deletes it. Memory should stay flat and time grow linearly (issue 16).

Usage: python3 bench/scale_bench.py --build build-dev --sizes 100,200,400,5000 [--dir /tmp]
"""
import argparse
import os
import re
import subprocess


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-dev")
    ap.add_argument("--sizes", default="100,200,400,800", help="trace sizes in MB")
    ap.add_argument("--dir", default="/tmp")
    args = ap.parse_args()
    gen = os.path.join(args.build, "bench", "synthetic_trace")
    hs = os.path.join(args.build, "cli", "heapsight")
    print("| trace MB | events (M) | wall s | CPU s | peak RSS MB | wall s per GB |")
    print("|---|---|---|---|---|---|")
    for mb in args.sizes.split(","):
        path = os.path.join(args.dir, "heapsight-scale-%s.%d.hst" % (mb, os.getpid()))
        out = subprocess.run([gen, path, mb], capture_output=True, text=True, check=True).stdout
        m = re.search(r"(\d+) bytes, (\d+) allocations, (\d+) frees", out)
        size, events = int(m.group(1)), int(m.group(2)) + int(m.group(3))
        try:
            # No analysis cache: it would time writing one too, and be left behind.
            p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", hs, "report", path],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, HEAPSIGHT_NO_CACHE="1"))
            wall, user, sys_, rss = p.stderr.strip().splitlines()[-1].split()
        finally:
            os.unlink(path)
        print("| %.0f | %.0f | %s | %.2f | %.1f | %.1f |" % (
            size / 1e6, events / 1e6, wall, float(user) + float(sys_), int(rss) / 1024,
            float(wall) / (size / 1e9)), flush=True)


if __name__ == "__main__":
    main()
