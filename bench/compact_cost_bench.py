#!/usr/bin/env python3
"""bench/compact_cost_bench.py: instructions per event of exact vs compact frees.

Runs a program under valgrind's callgrind (--separate-threads=yes) three
ways: plain, under the preload with exact frees, and with compact frees
(HEAPSIGHT_COMPACT_FREES=1, which also compresses at level 9 unless
--level says otherwise), and prints per mode the instructions of the
program's thread (the main thread: both workloads are single-threaded) and
of every other thread (heapsight's writer thread, which compresses and
writes the chunks), divided by the trace's events (allocation calls +
frees). Instruction counts are stable on a loaded machine where times are
not.

Workloads:
  alloc    bench/alloc_bench --allocs N (12-frame stacks, half the blocks
           freed at once, half through a ring: frees in allocation order)
  python   python3 building and sorting an N-entry dict, PYTHONMALLOC=malloc
           (frees in sorted order: the case compact frees are for)

Usage: python3 bench/compact_cost_bench.py --build build-dev [--workloads alloc,python]
           [--allocs 200000] [--python-entries 100000] [--level 9]
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compile_bench  # noqa: E402  (events_of)
import hook_cost_bench  # noqa: E402  (thread_totals)
import run_bench  # noqa: E402  (PYTHON_SCRIPT, heapsight_binary, git_commit, machine_info)


def run(argv, env, outdir, preload=None, extra_env=None):
    e = dict(os.environ, **env)
    if extra_env:
        e.update(extra_env)
    if preload:
        e["LD_PRELOAD"] = preload
        e["HEAPSIGHT_OUTPUT"] = os.path.join(outdir, "t.%p.hst")
        e["HEAPSIGHT_QUIET"] = "1"
    cmd = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
           "--callgrind-out-file=" + os.path.join(outdir, "callgrind.out.%p")] + argv
    p = subprocess.run(cmd, env=e, cwd=outdir, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("compact_cost_bench: %s failed:\n%s" % (argv, p.stderr[-2000:]))
    return hook_cost_bench.thread_totals(outdir, "callgrind.out")


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(repo, "build-dev"))
    ap.add_argument("--workloads", default="alloc,python")
    ap.add_argument("--allocs", type=int, default=200000)
    ap.add_argument("--python-entries", type=int, default=100000)
    ap.add_argument("--level", help="HEAPSIGHT_ZSTD_LEVEL for the compact runs (default: "
                    "the preload's choice, 9)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    preload = os.path.join(build, "preload", "libheapsight.so")
    heapsight = run_bench.heapsight_binary(build)
    work = tempfile.mkdtemp(prefix="heapsight-compact-cost-")
    rows = []
    try:
        for name in args.workloads.split(","):
            if name == "alloc":
                argv = [os.path.join(build, "bench", "alloc_bench"), "--allocs", str(args.allocs)]
                env = {}
            elif name == "python":
                script = os.path.join(work, "dict_sort.py")
                with open(script, "w") as f:
                    f.write(run_bench.PYTHON_SCRIPT % args.python_entries)
                argv = ["/usr/bin/python3", script]
                env = {"PYTHONMALLOC": "malloc"}
            else:
                sys.exit("unknown workload " + name)
            result = {}
            for mode in ("plain", "exact", "compact"):
                d = os.path.join(work, name + "-" + mode)
                os.mkdir(d)
                extra = {}
                if mode == "compact":
                    extra["HEAPSIGHT_COMPACT_FREES"] = "1"
                    if args.level:
                        extra["HEAPSIGHT_ZSTD_LEVEL"] = args.level
                totals = run(argv, env, d, None if mode == "plain" else preload, extra)
                traces = sorted(glob.glob(os.path.join(d, "t.*.hst")))
                events = sum(compile_bench.events_of(heapsight, t) or 0 for t in traces)
                size = sum(os.path.getsize(t) for t in traces)
                main_ir = totals.get(1, 0)
                other_ir = sum(v for k, v in totals.items() if k != 1)
                result[mode] = (main_ir, other_ir, events, size)
                print("%s %s: main %d, other threads %d instructions, %d events, %d bytes" %
                      (name, mode, main_ir, other_ir, events, size), file=sys.stderr)
            rows.append((name, result))
        model, cores, mem = run_bench.machine_info()
        print("Measured on %s (%d cores, %s RAM), commit %s, valgrind callgrind; "
              "instructions per event (allocation calls + frees)." % (
                  model, cores, mem, run_bench.git_commit(repo)))
        print()
        print("| workload | events | mode | program thread, added by heapsight | "
              "writer thread | trace bytes |")
        print("|---|---|---|---|---|---|")
        for name, result in rows:
            plain_main = result["plain"][0]
            for mode in ("exact", "compact"):
                main_ir, other_ir, events, size = result[mode]
                per = lambda v: "%.1f" % (v / events) if events else "-"  # noqa: E731
                print("| %s | %s | %s | %s | %s | %s |" % (
                    name, "{:,}".format(events), mode, per(main_ir - plain_main),
                    per(other_ir), "{:,}".format(size)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
