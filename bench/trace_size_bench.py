#!/usr/bin/env python3
"""bench/trace_size_bench.py: trace sizes of real programs, heapsight vs heaptrack.

Runs a few real programs once each under `heapsight record` and under
`heaptrack` (both with their defaults) and prints, per program, the events
(heapsight's allocation calls + frees), the bytes of every trace file each
tool wrote and the bytes per event. Programs whose interpreter is not
installed are skipped. The workloads are small, allocation-heavy scripts:

  perl     builds a 300,000-entry hash of arrays (global destruction then
           frees it in hash order, unrelated to allocation order)
  python3  builds and dumps a 300,000-element JSON list
  node     builds a 300,000-element array of objects (V8's helper threads)
  cc1plus  GCC's C++ compiler proper at -O0 on bench/compile_workload.cc

With --write-doc FILE the table replaces the block between
`<!-- trace-size:begin -->` and `<!-- trace-size:end -->` of FILE.

Usage (from the repo root, after `ninja -C build`):
  python3 bench/trace_size_bench.py --build build [--write-doc docs/performance.md]
"""

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compile_bench  # noqa: E402  (events_of)
import run_bench  # noqa: E402  (measure, machine_info, ...)

PERL = ('my %h; for my $i (1..300000) { $h{"key$i"} = [$i, "v$i"]; } '
        'print scalar(keys %h), "\\n";')
PYTHON = ('import json; l = [{"i": i, "s": str(i)} for i in range(300000)]; '
          'print(len(json.dumps(l)))')
NODE = ('const a = []; for (let i = 0; i < 300000; i++) a.push({i, s: String(i)}); '
        'console.log(a.length)')


def workloads(repo, work):
    """(name, description, argv) of every workload whose program exists."""
    out = []
    if shutil.which("perl"):
        out.append(("perl", "`perl -e` building a 300,000-entry hash of arrays",
                    ["perl", "-e", PERL]))
    if shutil.which("python3"):
        out.append(("python3", "`python3 -c` building and dumping a 300,000-element JSON list",
                    ["python3", "-c", PYTHON]))
    if shutil.which("node"):
        out.append(("node", "`node -e` building a 300,000-element array of objects",
                    ["node", "-e", NODE]))
    cc1plus = subprocess.run(["g++", "-print-prog-name=cc1plus"], capture_output=True,
                             text=True).stdout.strip()
    if os.path.isabs(cc1plus) and os.access(cc1plus, os.X_OK):
        ii = os.path.join(work, "workload.ii")
        subprocess.run(["g++", "-std=c++17", "-E",
                        os.path.join(repo, "bench", "compile_workload.cc"), "-o", ii], check=True)
        out.append(("cc1plus", "`cc1plus -O0` on bench/compile_workload.cc",
                    [cc1plus, "-fpreprocessed", "-quiet", "-O0", ii, "-o", "/dev/null"]))
    return out


def traced_bytes(directory):
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory)
                   if f.startswith("t."))
    return files, sum(os.path.getsize(f) for f in files)


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(repo, "build"))
    ap.add_argument("--write-doc", metavar="FILE")
    args = ap.parse_args()
    heapsight = os.path.join(os.path.abspath(args.build), "analyzer", "heapsight")
    if not os.access(heapsight, os.X_OK):
        sys.exit("trace_size_bench: %s not found; build first" % heapsight)
    have_heaptrack = shutil.which("heaptrack") is not None

    work = tempfile.mkdtemp(prefix="heapsight-size-bench-")
    try:
        rows = []
        for name, description, argv in workloads(repo, work):
            d = os.path.join(work, name + "-heapsight")
            os.mkdir(d)
            run = run_bench.measure([heapsight, "record", "-q", "-o",
                                     os.path.join(d, "t.%p.hst"), "--"] + argv, d)
            if run.rc != 0:
                sys.exit("trace_size_bench: %s exited %d under heapsight:\n%s" %
                         (name, run.rc, run.stderr))
            files, hs_bytes = traced_bytes(d)
            events = sum(compile_bench.events_of(heapsight, f) or 0 for f in files)
            ht_bytes = None
            if have_heaptrack:
                d = os.path.join(work, name + "-heaptrack")
                os.mkdir(d)
                run = run_bench.measure(["heaptrack", "-o", os.path.join(d, "t")] + argv, d)
                _, ht_bytes = traced_bytes(d)
                if run.rc != 0:
                    ht_bytes = -ht_bytes  # shown as failed
            print("%-8s %d events: heapsight %d bytes (%d files), heaptrack %s" % (
                name, events, hs_bytes, len(files), ht_bytes), file=sys.stderr)
            rows.append((description, events, hs_bytes, len(files), ht_bytes))

        model, cores, mem = run_bench.machine_info()
        lines = ["Measured %s on %s (%d cores, %s RAM), commit %s; one run each, both tools "
                 "with their defaults; %s." % (
                     datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     model, cores, mem, run_bench.git_commit(repo),
                     run_bench.tool_version(["heaptrack", "--version"])
                     if have_heaptrack else "heaptrack not installed"),
                 "",
                 "| program | events | heapsight bytes | bytes/event | heaptrack bytes | "
                 "bytes/event | heapsight / heaptrack |",
                 "|---|---|---|---|---|---|---|"]
        for description, events, hs, nfiles, ht in rows:
            per = lambda b: "%.2f" % (b / events) if events else "-"  # noqa: E731
            if ht is None:
                ht_cells = "- | - | -"
            elif ht < 0:
                ht_cells = "%s (failed) | %s | -" % (run_bench.fmt_bytes(-ht), per(-ht))
            else:
                ht_cells = "%s | %s | %.2f" % (run_bench.fmt_bytes(ht), per(ht), hs / ht)
            files = " (%d files)" % nfiles if nfiles > 1 else ""
            lines.append("| %s | %s | %s%s | %s | %s |" % (
                description, "{:,}".format(events), run_bench.fmt_bytes(hs), files, per(hs),
                ht_cells))
        run_bench.publish(lines, args.write_doc, "trace-size")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
