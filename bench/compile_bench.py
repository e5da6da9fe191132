#!/usr/bin/env python3
"""bench/compile_bench.py: heapsight vs heaptrack on a real program.

Traces GCC's C++ compiler proper (cc1plus, found with
`g++ -print-prog-name=cc1plus`) compiling bench/compile_workload.cc at -O2,
already preprocessed (so the run is one process): plain, under `heapsight
record` and under heaptrack (and once under valgrind memcheck with
--valgrind). Prints wall and CPU seconds, slowdown, trace bytes and bytes
per event, and heapsight's unwind-cache counters. Where
bench/run_bench.py's microbenchmark is the worst case for an allocation
tracer (nothing but allocations, a dozen stacks), this is the common case:
deep, varied stacks and work between allocations.

With --write-doc FILE the table replaces the block between
`<!-- compile-bench:begin -->` and `<!-- compile-bench:end -->` of FILE.

Usage (from the repo root, after `ninja -C build`):
  python3 bench/compile_bench.py --build build [--runs 3] [--valgrind]
"""

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_bench  # noqa: E402  (measure, median_run, machine_info, ...)


def events_of(heapsight, trace):
    """Allocation calls + frees of a trace, from `heapsight report`."""
    out = subprocess.run([heapsight, "report", trace], capture_output=True, text=True).stdout
    allocs = re.search(r"in ([\d,]+) allocations", out)
    frees = re.search(r"blocks freed\s+([\d,]+)", out)
    if not allocs or not frees:
        return None
    return int(allocs.group(1).replace(",", "")) + int(frees.group(1).replace(",", ""))


def heaptrack_calls(files):
    """'N calls to allocation functions' of a heaptrack trace, as text."""
    if not files or not shutil.which("heaptrack_print"):
        return "?"
    out = subprocess.run(["heaptrack_print", files[0]], capture_output=True, text=True).stdout
    m = re.search(r"calls to allocation functions: (\d+)", out)
    return "{:,} allocation calls".format(int(m.group(1))) if m else "no summary"


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(repo, "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--valgrind", action="store_true", help="also one run under memcheck")
    ap.add_argument("--write-doc", metavar="FILE")
    args = ap.parse_args()

    heapsight = os.path.join(os.path.abspath(args.build), "analyzer", "heapsight")
    if not os.access(heapsight, os.X_OK):
        sys.exit("compile_bench: %s not found; build first" % heapsight)
    cc1plus = subprocess.run(["g++", "-print-prog-name=cc1plus"], capture_output=True,
                             text=True).stdout.strip()
    if not os.path.isabs(cc1plus) or not os.access(cc1plus, os.X_OK):
        sys.exit("compile_bench: cc1plus not found (g++ -print-prog-name=cc1plus)")

    work = tempfile.mkdtemp(prefix="heapsight-compile-bench-")
    try:
        source = os.path.join(repo, "bench", "compile_workload.cc")
        ii = os.path.join(work, "workload.ii")
        subprocess.run(["g++", "-std=c++17", "-E", source, "-o", ii], check=True)
        compile_argv = [cc1plus, "-fpreprocessed", "-quiet", "-O2", ii, "-o", "/dev/null"]

        tools = [("plain", lambda d: compile_argv),
                 ("heapsight", lambda d: [heapsight, "record", "-q", "-o",
                                          os.path.join(d, "t.%p.hst"),
                                          "--option", "stats=1", "--"] + compile_argv)]
        if shutil.which("heaptrack"):
            tools.append(("heaptrack", lambda d: ["heaptrack", "-o", os.path.join(d, "t")] +
                          compile_argv))
        rows = []
        for name, argv_of in tools:
            runs, sizes, extra = [], [], ""
            for i in range(args.runs):
                d = os.path.join(work, "%s-%d" % (name, i))
                os.mkdir(d)
                run = run_bench.measure(argv_of(d), d)
                if run.rc != 0 and name != "heaptrack":
                    sys.exit("compile_bench: %s exited %d:\n%s" % (name, run.rc, run.stderr))
                runs.append(run)
                files = [os.path.join(d, f) for f in os.listdir(d) if f.startswith("t.")]
                sizes.append(sum(os.path.getsize(f) for f in files))
                if name == "heapsight":
                    stats = re.search(r"unwind cache: .*", run.stderr)
                    extra = (stats.group(0) + " (`HEAPSIGHT_STATS=1`)") if stats else ""
                    events = events_of(heapsight, files[0])
                print("%-10s run %d: %.2f s" % (name, i + 1, run.wall), file=sys.stderr)
                if run.rc != 0:
                    # heaptrack 1.4 fails on this workload here: its
                    # interpreter dies of std::bad_alloc, the program gets
                    # SIGPIPE. Report that run and what its trace holds.
                    last = run.stderr.strip().splitlines()
                    extra = "exited %d (%s); its trace holds %s" % (
                        run.rc, "; ".join(l.strip() for l in last if "what()" in l or
                                          "terminate" in l) or "see its stderr",
                        heaptrack_calls(files))
                    break
            rows.append((name, run_bench.median_run(runs), sorted(sizes)[len(sizes) // 2], extra))
        if args.valgrind and shutil.which("valgrind"):
            d = os.path.join(work, "valgrind")
            os.mkdir(d)
            run = run_bench.measure(["valgrind", "-q", "--leak-check=full"] + compile_argv, d)
            rows.append(("valgrind (1 run)", run, 0, ""))

        model, cores, mem = run_bench.machine_info()
        plain = rows[0][1]
        lines = []
        lines.append("Measured %s on %s (%d cores, %s RAM), commit %s." % (
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            model, cores, mem, run_bench.git_commit(repo)))
        lines.append("Workload: `cc1plus -O2` on bench/compile_workload.cc, preprocessed; "
                     "%s heapsight events (allocation calls + frees); median of %d runs. %s." % (
                         "{:,}".format(events) if events else "?", args.runs,
                         run_bench.tool_version(["heaptrack", "--version"])))
        lines.append("")
        lines.append("| tool | wall s | slowdown | CPU s | trace bytes | bytes/event |")
        lines.append("|---|---|---|---|---|---|")
        for name, run, size, _ in rows:
            per_event = "%.2f" % (size / events) if size and events else "-"
            lines.append("| %s | %.2f | %.1fx | %.2f | %s | %s |" % (
                name + (" (failed, exit %d)" % run.rc if run.rc else ""), run.wall, run.wall / plain.wall, run.cpu, run_bench.fmt_bytes(size),
                per_event))
        lines.append("")
        walls = {name: run.wall for name, run, _, _ in rows}
        if "heaptrack" in walls and rows[2][1].rc == 0:
            ratio = (walls["heapsight"] / plain.wall) / (walls["heaptrack"] / plain.wall)
            lines.append("- heapsight slowdown / heaptrack slowdown = %.2f (target <= 0.25: %s)" % (
                ratio, "met" if ratio <= 0.25 else "NOT met"))
        for name, _, _, extra in rows:
            if extra:
                lines.append("- %s: %s" % (name, extra))
        run_bench.publish(lines, args.write_doc, "compile-bench")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
