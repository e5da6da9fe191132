#!/usr/bin/env python3
"""bench/overhead_parts_bench.py: where heapsight's overhead on a family row goes.

For rows of `run_bench.py --family` (the same workloads, sized by the same
--allocs), runs in rounds, every variant once per round:

  plain     the program alone
  dormant   `heapsight record --option start=paused`: the preload loaded and
            initialized in every process, its hooks installed, nothing
            recorded (start-up and library loading)
  no scan   `heapsight record --option leak-scan=0`: every event recorded,
            no leak scan at exit
  full      `heapsight record` (the family's heapsight column), with
            HEAPSIGHT_STATS: its lines give each exit scan's duration
  address   `heapsight record --pairing=address`

and prints per row the least wall and CPU seconds of each variant over the
runs, and the full overhead split into start-up (dormant - plain), events
(no scan - dormant) and exit scan (full - no scan), wall and CPU; the
events (allocation calls + frees, `heapsight report` of one full run's
traces, all processes), the processes traced, the events part's CPU ns per
event, and the exit scans' summed duration as HEAPSIGHT_STATS reports it
(processes that close their stderr before exiting, as coreutils do, print
no stats line). Wall differences are only meaningful on a quiet machine;
the load average is printed.

Usage (from the repo root, after `ninja -C build`):
  python3 bench/overhead_parts_bench.py --build build [--runs 3]
      [--rows node,ruby,cc1plus,bash] [--allocs 2e6]
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
import run_bench  # noqa: E402  (measure, family_workloads, heapsight_binary, ...)

VARIANTS = ("plain", "dormant", "no scan", "full", "address")
SCAN_LINE = re.compile(r"stats: pid (\d+): leak scan \d+: .*?, (\d+) us \(block set")


def events_of(heapsight, traces):
    """Allocation calls + frees over every process of a set of traces."""
    out = subprocess.run([heapsight, "report"] + traces, capture_output=True, text=True).stdout
    allocs = sum(int(n.replace(",", "")) for n in re.findall(r"in ([\d,]+) allocations", out))
    frees = sum(int(n.replace(",", "")) for n in re.findall(r"blocks freed\s+([\d,]+)", out))
    return allocs + frees


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(repo, "build"), help="meson build directory")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--allocs", type=float, default=2e6,
                    help="sizes the rows as run_bench.py --family --allocs does")
    ap.add_argument("--rows", default="node,ruby,cc1plus,bash",
                    help="rows of run_bench.py --family")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    heapsight = run_bench.heapsight_binary(build)
    work = tempfile.mkdtemp(prefix="heapsight-parts.")
    rows = run_bench.family_workloads(args, build, work)
    load_before = os.getloadavg()[0]
    runs = {}      # (row, variant) -> [Run]
    scans = {}     # row -> (summed exit-scan us, stats lines) of the full runs
    events = {}    # row -> (events, trace files) of the first full run
    for i in range(args.runs):
        for key, _, argv, env in rows:
            for variant in VARIANTS:
                tag = "{}-{}".format(key, variant.replace(" ", "-"))
                record = [heapsight, "record", "-q", "-o", os.path.join(work, tag + ".%p.hst")]
                extra = {"dormant": ["--option", "start=paused"],
                         "no scan": ["--option", "leak-scan=0"],
                         "full": ["--option", "stats=1"],
                         "address": ["--pairing=address"]}.get(variant)
                cmd = argv if variant == "plain" else record + extra + ["--"] + argv
                run = run_bench.measure(cmd, work, env_extra=env)
                if run.rc != 0:
                    sys.exit("overhead_parts_bench: {} {} failed (exit {}): {}".format(
                        key, variant, run.rc, run.stderr.strip()[-500:]))
                runs.setdefault((key, variant), []).append(run)
                if variant == "full":
                    found = SCAN_LINE.findall(run.stderr)
                    total = sum(int(us) for _, us in found)
                    scans.setdefault(key, []).append((total, len(found)))
                    if key not in events:
                        traces = sorted(os.path.join(work, n) for n in os.listdir(work)
                                        if n.startswith(tag) and n.endswith(".hst"))
                        events[key] = (events_of(heapsight, traces), len(traces))
                run_bench.remove_prefix(work, tag)
        print("round {} done".format(i + 1), file=sys.stderr)

    model, cores, mem = run_bench.machine_info()
    lines = ["Measured {} on {} ({} cores, {} RAM), commit {}, build {}; load average {:.1f} "
             "before and {:.1f} after; least of {} runs per variant, all in the same "
             "rounds.".format(
                 datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                 model, cores, mem, run_bench.git_commit(repo), build, load_before,
                 os.getloadavg()[0], args.runs),
             "",
             "| workload | plain wall / CPU s | full: + wall / + CPU s | start-up (dormant) "
             "| events (no scan - dormant) | exit scan (full - no scan) | address: + wall / "
             "+ CPU s | events, trace files | events part CPU ns/event | exit scans "
             "(HEAPSIGHT_STATS) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key, label, _, _ in rows:
        best = {v: (min(r.wall for r in runs[(key, v)]), min(r.cpu for r in runs[(key, v)]))
                for v in VARIANTS}

        def diff(a, b):
            return "{:+.3f} / {:+.3f}".format(best[a][0] - best[b][0], best[a][1] - best[b][1])

        n_events, n_traces = events.get(key, (0, 0))
        event_cpu = best["no scan"][1] - best["dormant"][1]
        scan_us = min(total for total, _ in scans[key])
        scan_procs = max(count for _, count in scans[key])
        lines.append("| {} | {:.3f} / {:.3f} | {} | {} | {} | {} | {} | {:,}, {} | {} | "
                     "{:.0f} ms in {} process(es) |".format(
                         label, best["plain"][0], best["plain"][1], diff("full", "plain"),
                         diff("dormant", "plain"), diff("no scan", "dormant"),
                         diff("full", "no scan"), diff("address", "plain"), n_events, n_traces,
                         "{:.0f}".format(event_cpu * 1e9 / n_events) if n_events else "-",
                         scan_us / 1000, scan_procs))
    text = "\n".join(lines) + "\n"
    print(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
