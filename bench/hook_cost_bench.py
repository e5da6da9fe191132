#!/usr/bin/env python3
"""Instructions per event that heapsight adds to real programs (callgrind).

Runs each workload at two sizes under valgrind's callgrind
(--separate-threads=yes), plain and with the preload, and prints the
program thread's instructions per event added by heapsight:

    ((hs_big - plain_big) - (hs_small - plain_small)) / (events_big - events_small)

The difference of two sizes cancels start-up and exit. The exit leak scan
is off (HEAPSIGHT_LEAK_SCAN=0) unless --leak-scan: under valgrind it also
reads valgrind's own mappings, which it sees in /proc/self/maps (python:
127 MB of roots under valgrind against 2.2 MB natively, about 100 M
instructions a native run does not spend), and their size varies with the
run. Events are allocation calls plus frees, from `heapsight
report --format=json` on the trace. Also prints the whole-run overhead of
the bigger size, the writer thread's instructions per event, and the
libheapsight.so functions with the largest inclusive cost per event
(--functions N).

Workloads: python (dict build and sort, PYTHONMALLOC=malloc, the real
interpreter, not a pyenv shim; python:SMALL/BIG for other sizes), perl (word count), cc1plus (g++ -O2 -c on a
small translation unit, cc1plus run directly with the preload),
alloc_bench at depths 12/60/200, and (not in the default rows) recursive
(alloc_bench --recursive: 60 fixed frames under 1-8 varying ones) and
node (the Map script of /tmp/ab's node trace, 20,000 / 60,000 entries; V8 keeps
the entries on its own heap, so both sizes make ~890,000 mallocs, most at start-up:
the two-size difference means nothing there, read the whole-run columns:
(heapsight - plain) / events of the big run).

--env NAME=VALUE (repeatable) sets a HEAPSIGHT_* variable for the preload's
runs, e.g. --env HEAPSIGHT_PAIRING=address. Where the build's `heapsight`
cannot read the trace (a format it does not know yet), the events are
counted on a native run of the same size in the default mode instead (the
workloads are deterministic).

Usage: python3 bench/hook_cost_bench.py --build build-dev [--rows python,perl,cc1plus,12,60,200]
       [--preload other/libheapsight.so] [--functions 12] [--env HEAPSIGHT_PAIRING=address]
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

PYTHON = "/root/.pyenv/versions/3.11.7/bin/python3.11"
PY_SCRIPT = ("d = {}\nfor i in range(%d):\n    d['k%%d' %% (i * 7919 %% 1000003)] = [i]\n"
             "s = sorted(d.items(), key=lambda kv: kv[0][::-1])\nprint(len(s))\n")
NODE_SCRIPT = ("const m = new Map();\n"
               "for (let i = 0; i < %d; i++) m.set('key' + i, {i: i, s: String(i).repeat(3)});\n"
               "const a = Array.from(m.keys()).sort((x, y) => x.length - y.length || "
               "(x < y ? -1 : 1));\nconsole.log(m.size, a.length);\n")
CC_SOURCE = ("#include <map>\n#include <string>\n#include <vector>\n"
             "std::map<std::string, std::vector<int>> M%d;\n"
             "int f%d(const std::string& s) { M%d[s].push_back(%d); return M%d.size(); }\n")


def thread_totals(outdir, prefix):
    totals = {}
    for path in glob.glob(os.path.join(outdir, prefix + ".*")):
        m = re.search(r"-(\d+)$", path)
        if not m:
            continue
        with open(path) as f:
            for line in f:
                if line.startswith("totals:") or line.startswith("summary:"):
                    totals[int(m.group(1))] = int(line.split()[1])
                    break
    return totals


def callgrind(argv, env, outdir, prefix):
    for old in glob.glob(os.path.join(outdir, prefix + ".*")):
        os.remove(old)
    cmd = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
           "--callgrind-out-file=" + os.path.join(outdir, prefix + ".%p")] + argv
    p = subprocess.run(cmd, env=env, cwd=outdir, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("hook_cost_bench: %s failed:\n%s" % (" ".join(argv), p.stderr[-2000:]))
    return thread_totals(outdir, prefix)


def events_of(heapsight, trace):
    p = subprocess.run([heapsight, "report", "--format=json", "--no-cache", trace],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None
    t = json.loads(p.stdout)["processes"][-1]["totals"]
    return t["allocations"] + t["blocks_freed"]


def events_native(heapsight, preload, argv, env, work, i):
    """The events of a native default-mode run (for traces `heapsight` cannot read)."""
    env = {k: v for k, v in env.items() if k not in ("HEAPSIGHT_PAIRING",)}
    out = os.path.join(work, "native%d" % i)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    env.update({"LD_PRELOAD": preload, "HEAPSIGHT_OUTPUT": os.path.join(out, "t.hst")})
    subprocess.run(argv, env=env, cwd=work, capture_output=True, check=True)
    trace = max(glob.glob(os.path.join(out, "t*.hst")), key=os.path.getsize)
    return events_of(heapsight, trace)


def top_functions(outdir, prefix, events, n):
    """libheapsight.so functions by inclusive cost, in instructions per event."""
    path = sorted(p for p in glob.glob(os.path.join(outdir, prefix + ".*-01")))[0]
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True).stdout
    rows, seen = [], set()
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(\S.*)", line)
        if not m or "libheapsight.so" not in line:
            continue
        name = re.sub(r"\s*\[.*\]$", "", m.group(2)).split(":", 1)[-1]
        name = re.sub(r"\(.*", "", name).replace("heapsight::preload::", "")
        if name in seen:
            continue
        seen.add(name)
        rows.append((int(m.group(1).replace(",", "")) / events, name))
        if len(rows) == n:
            break
    return rows


def workloads(args, work, build):
    bench = os.path.join(build, "bench", "alloc_bench")
    rows = []
    for key in args.rows.split(","):
        if key == "python" or key.startswith("python:"):
            # python:SMALL/BIG picks the two dict sizes (python:200000/1000000:
            # the scale where the live table's resizes and misses show).
            ns = (20000, 60000) if key == "python" else tuple(
                int(n) for n in key.split(":", 1)[1].split("/"))
            sizes = []
            for n in ns:
                script = os.path.join(work, "dict_%d.py" % n)
                with open(script, "w") as f:
                    f.write(PY_SCRIPT % n)
                sizes.append(([PYTHON, script], {"PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0"}))
            rows.append(("python3.11: dict build and sort, {:,} / {:,} entries".format(*ns), sizes))
        elif key == "perl":
            sizes = []
            for n in (20000, 60000):
                text = os.path.join(work, "words_%d.txt" % n)
                words = ["w%d" % (i * 7919 % 50021) for i in range(n)]
                with open(text, "w") as f:
                    for i in range(0, len(words), 12):
                        f.write(" ".join(words[i:i + 12]) + "\n")
                sizes.append((["/usr/bin/perl", "-ne",
                               "$c{$_}++ for split; END { print scalar(keys %c), \"\\n\" }", text],
                              {}))
            rows.append(("perl: word count, 20,000 / 60,000 words", sizes))
        elif key == "cc1plus":
            cc1plus = subprocess.run(["g++", "-print-prog-name=cc1plus"], capture_output=True,
                                     text=True, check=True).stdout.strip()
            sizes = []
            for n in (1, 4):
                src = os.path.join(work, "tu_%d.cc" % n)
                with open(src, "w") as f:
                    for i in range(n * 8):
                        f.write(CC_SOURCE % (i, i, i, i, i))
                ii = os.path.join(work, "tu_%d.ii" % n)
                subprocess.run(["g++", "-E", "-o", ii, src], check=True)
                sizes.append(([cc1plus, "-fpreprocessed", ii, "-quiet", "-O2", "-o",
                               os.path.join(work, "tu_%d.s" % n)], {}))
            rows.append(("cc1plus -O2: <map>, <string>, <vector> and 8 / 32 functions", sizes))
        elif key in ("12", "60", "200"):
            sizes = [([bench, "--allocs", str(n), "--depth", key], {}) for n in (20000, 60000)]
            rows.append(("alloc_bench --depth %s, 20,000 / 60,000 allocations" % key, sizes))
        elif key == "recursive":
            sizes = [([bench, "--allocs", str(n), "--recursive"], {}) for n in (20000, 60000)]
            rows.append(("alloc_bench --recursive, 20,000 / 60,000 allocations", sizes))
        elif key == "node":
            # A Map of strings and objects (what V8 allocates with malloc:
            # its zone and backing stores), at two sizes.
            sizes = []
            for n in (20000, 60000):
                script = os.path.join(work, "map_%d.js" % n)
                with open(script, "w") as f:
                    f.write(NODE_SCRIPT % n)
                sizes.append((["/usr/bin/node", script], {}))
            rows.append(("node: Map build and sort, {:,} / {:,} entries".format(20000, 60000),
                         sizes))
        else:
            sys.exit("hook_cost_bench: unknown row " + key)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--preload", help="libheapsight.so to measure (default: the build's)")
    ap.add_argument("--rows", default="python,perl,cc1plus,12,60,200")
    ap.add_argument("--leak-scan", action="store_true", help="keep the exit leak scan on")
    ap.add_argument("--env", action="append", default=[],
                    help="NAME=VALUE for the preload's runs (repeatable)")
    ap.add_argument("--functions", type=int, default=0,
                    help="list the N costliest libheapsight.so functions (inclusive, per event)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    preload = os.path.abspath(args.preload or os.path.join(build, "preload", "libheapsight.so"))
    heapsight = os.path.join(build, "cli", "heapsight")
    work = tempfile.mkdtemp(prefix="hook-cost.")
    print("| workload | events (small / big) | plain Ir/event | heapsight added Ir/event "
          "(program thread) | writer thread Ir/event | whole big run: plain / heapsight M Ir |")
    print("|---|---|---|---|---|---|")
    details = []
    for label, sizes in workloads(args, work, build):
        res = []
        for i, (argv, env_extra) in enumerate(sizes):
            env = dict(os.environ, **env_extra)
            plain = callgrind(argv, env, work, "plain%d" % i)
            for old in glob.glob(os.path.join(work, "t%d*.hst" % i)):
                os.remove(old)
            env.update({"LD_PRELOAD": preload, "HEAPSIGHT_OUTPUT": os.path.join(
                work, "t%d.hst" % i), "HEAPSIGHT_QUIET": "1",
                "HEAPSIGHT_LEAK_SCAN": "1" if args.leak_scan else "0"})
            env.update(dict(kv.split("=", 1) for kv in args.env))
            hs = callgrind(argv, env, work, "hs%d" % i)
            # valgrind's launcher runs under the preload too (its own tiny
            # traces, t<i>.1.hst and so on): the program's trace is the largest.
            trace = max(glob.glob(os.path.join(work, "t%d*.hst" % i)), key=os.path.getsize)
            events = events_of(heapsight, trace)
            if events is None:
                events = events_native(heapsight, preload, argv, env, work, i)
            res.append((plain.get(1, 0), hs.get(1, 0), sum(v for k, v in hs.items() if k != 1),
                        events))
        (p0, h0, w0, e0), (p1, h1, w1, e1) = res
        de = e1 - e0
        print("| %s | %s / %s | %.1f | %.1f | %.1f | %.1f / %.1f |" % (
            label, format(e0, ","), format(e1, ","), (p1 - p0) / de, ((h1 - p1) - (h0 - p0)) / de,
            (w1 - w0) / de, p1 / 1e6, h1 / 1e6))
        if args.functions:
            details.append((label, top_functions(work, "hs1", e1, args.functions)))
    for label, rows in details:
        print("\n%s: libheapsight.so functions, inclusive Ir per event (big run, program thread)"
              % label)
        for cost, name in rows:
            print("  %8.1f  %s" % (cost, name))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
