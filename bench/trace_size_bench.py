#!/usr/bin/env python3
"""bench/trace_size_bench.py: trace sizes of real programs, heapsight vs heaptrack.

Runs real programs once each under `heapsight record` and under `heaptrack`
(both with their defaults unless --env says otherwise) and prints, per
program, the events (heapsight's allocation calls + frees), the bytes of
every trace file each tool wrote and the bytes per event. heaptrack's side is
checked: `heaptrack_print` must parse its trace, and its count of allocation
calls is printed next to heapsight's so a tool that dropped events shows.
Programs that are not installed are skipped. The workloads are those of
issue 15 (scripts are written to files: heaptrack stores the command line in
its trace, and a newline in an argument broke heaptrack_print):

  python   python3 building and sorting a 1,000,000-entry dict,
           PYTHONMALLOC=malloc (run_bench.PYTHON_SCRIPT)
  perl     word count on 10 MB of text (random words of a 50,000-word
           vocabulary, 12 per line)
  cc1plus  GCC's C++ compiler proper at -O2 on bench/compile_workload.cc
  git      git log -p over this repository's whole history
  sqlite   sqlite3 :memory:, 200,000 inserts, an index, grouped queries
  node     node building a 300,000-element array of objects (V8's threads)

Each program also runs under `heapsight record --compact` (compact frees,
HEAPSIGHT_COMPACT_FREES=1, trace format version 5: a free names its block's
stack and size; blocks compressed at level 9 unless --env sets the level):
its size is a column of its own, and its allocation count and bytes not
freed at exit must equal the exact trace's (single-threaded programs: the
same run twice).

With --keep DIR the traces stay in DIR/<program>-{heapsight,compact,heaptrack}/.
With --write-doc FILE the table replaces the block between
`<!-- trace-size:begin -->` and `<!-- trace-size:end -->` of FILE.

Usage (from the repo root, after `ninja -C build-dev`):
  python3 bench/trace_size_bench.py --build build-dev [--programs python,perl]
      [--keep /tmp/traces] [--env HEAPSIGHT_ZSTD_LEVEL=9] [--write-doc docs/performance.md]
"""

import argparse
import datetime
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compile_bench  # noqa: E402  (events_of)
import run_bench  # noqa: E402  (measure, machine_info, PYTHON_SCRIPT, ...)

PERL_SCRIPT = '$c{$_}++ for split; END { print scalar(keys %c), "\\n" }\n'
SQL = """
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v TEXT, n INTEGER);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000)
INSERT INTO t(k, v, n) SELECT 'key' || (i * 7919 % 100003), hex(randomblob(24)), i % 977 FROM c;
CREATE INDEX tk ON t(k);
SELECT count(*), sum(length(v)) FROM t;
SELECT n, count(*), max(k) FROM t GROUP BY n ORDER BY 2 DESC LIMIT 3;
SELECT count(DISTINCT k) FROM t;
"""
NODE_SCRIPT = ("const a = []; for (let i = 0; i < 300000; i++) a.push({i, s: String(i)});\n"
               "console.log(a.length);\n")
ALL = "python,perl,cc1plus,git,sqlite,node"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def workloads(repo, work, names):
    """(name, description, argv, extra env) of every workload whose program exists."""
    out = []
    for name in names:
        if name == "python" and os.path.exists("/usr/bin/python3"):
            script = write(os.path.join(work, "dict_sort.py"), run_bench.PYTHON_SCRIPT % 1000000)
            out.append((name, "python3: build and sort a 1,000,000-entry dict, "
                        "PYTHONMALLOC=malloc", ["/usr/bin/python3", script],
                        {"PYTHONMALLOC": "malloc"}))
        elif name == "perl" and shutil.which("perl"):
            text = os.path.join(work, "words.txt")
            rnd = random.Random(15)
            vocab = ["w%d" % i for i in range(50000)]
            with open(text, "w") as f:
                size = 0
                while size < 10 << 20:
                    line = " ".join(rnd.choice(vocab) for _ in range(12)) + "\n"
                    f.write(line)
                    size += len(line)
            script = write(os.path.join(work, "wc.pl"), PERL_SCRIPT)
            out.append((name, "perl: word count on 10 MB of text",
                        ["/usr/bin/perl", "-n", script, text], {}))
        elif name == "cc1plus":
            cc1plus = subprocess.run(["g++", "-print-prog-name=cc1plus"], capture_output=True,
                                     text=True).stdout.strip()
            if not (os.path.isabs(cc1plus) and os.access(cc1plus, os.X_OK)):
                continue
            ii = os.path.join(work, "workload.ii")
            subprocess.run(["g++", "-std=c++17", "-E",
                            os.path.join(repo, "bench", "compile_workload.cc"), "-o", ii],
                           check=True)
            out.append((name, "cc1plus -O2 on bench/compile_workload.cc",
                        [cc1plus, "-fpreprocessed", "-quiet", "-O2", ii, "-o", "/dev/null"], {}))
        elif name == "git" and shutil.which("git"):
            commits = subprocess.run(["git", "-C", repo, "rev-list", "--count", "HEAD"],
                                     capture_output=True, text=True).stdout.strip()
            out.append((name, "git log -p on this repository (%s commits)" % commits,
                        ["git", "-C", repo, "--no-pager", "log", "-p"], {}))
        elif name == "sqlite" and shutil.which("sqlite3"):
            sql = write(os.path.join(work, "workload.sql"), SQL)
            out.append((name, "sqlite3 :memory:, 200,000 inserts, index, grouped queries",
                        ["sqlite3", ":memory:", ".read " + sql], {}))
        elif name == "node" and shutil.which("node"):
            script = write(os.path.join(work, "array.js"), NODE_SCRIPT)
            out.append((name, "node: a 300,000-element array of objects", ["node", script], {}))
    return out


def traced(directory):
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory)
                   if f.startswith("t."))
    return files, sum(os.path.getsize(f) for f in files)


def heaptrack_calls(files):
    """Allocation calls heaptrack_print finds in the trace, or None if it fails."""
    if not files or not shutil.which("heaptrack_print"):
        return None
    p = subprocess.run(["heaptrack_print", "-p", "0", "-a", "0", "-T", "0", "-l", "0",
                        "-n", "0", files[0]], capture_output=True, text=True)
    m = re.search(r"calls to allocation functions: (\d+)", p.stdout)
    return int(m.group(1)) if p.returncode == 0 and m else None


def allocations_of(heapsight, files):
    n = 0
    for f in files:
        out = subprocess.run([heapsight, "report", f], capture_output=True, text=True).stdout
        m = re.search(r"in ([\d,]+) allocations", out)
        n += int(m.group(1).replace(",", "")) if m else 0
    return n


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(repo, "build-dev"))
    ap.add_argument("--programs", default=ALL)
    ap.add_argument("--keep", metavar="DIR", help="keep the traces here")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for the heapsight runs")
    ap.add_argument("--no-heaptrack", action="store_true")
    ap.add_argument("--no-compact", action="store_true", help="skip the compact-frees runs")
    ap.add_argument("--write-doc", metavar="FILE")
    args = ap.parse_args()
    heapsight = run_bench.heapsight_binary(os.path.abspath(args.build))
    if not os.access(heapsight, os.X_OK):
        sys.exit("trace_size_bench: %s not found; build first" % heapsight)
    have_heaptrack = shutil.which("heaptrack") is not None and not args.no_heaptrack
    hs_env = dict(e.split("=", 1) for e in args.env)

    work = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(
        prefix="heapsight-size-bench-")
    os.makedirs(work, exist_ok=True)
    try:
        rows = []
        for name, description, argv, env in workloads(repo, work, args.programs.split(",")):
            d = os.path.join(work, name + "-heapsight")
            shutil.rmtree(d, ignore_errors=True)
            os.mkdir(d)
            run = run_bench.measure([heapsight, "record", "-q", "-o",
                                     os.path.join(d, "t.%p.hst"), "--"] + argv, d,
                                    env_extra=dict(env, **hs_env))
            if run.rc != 0:
                sys.exit("trace_size_bench: %s exited %d under heapsight:\n%s" %
                         (name, run.rc, run.stderr[-2000:]))
            files, hs_bytes = traced(d)
            events = sum(compile_bench.events_of(heapsight, f) or 0 for f in files)
            hs_allocs = allocations_of(heapsight, files)
            cp_bytes = None
            if not args.no_compact:
                d = os.path.join(work, name + "-compact")
                shutil.rmtree(d, ignore_errors=True)
                os.mkdir(d)
                run = run_bench.measure([heapsight, "record", "-q", "--compact", "-o",
                                         os.path.join(d, "t.%p.hst"), "--"] + argv, d,
                                        env_extra=dict(env, **hs_env))
                if run.rc != 0:
                    sys.exit("trace_size_bench: %s exited %d under heapsight --compact:\n%s" %
                             (name, run.rc, run.stderr[-2000:]))
                cp_files, cp_bytes = traced(d)
                cp_allocs = allocations_of(heapsight, cp_files)
                if cp_allocs != hs_allocs:
                    print("%-8s note: %d allocations with compact frees, %d exact (another run)"
                          % (name, cp_allocs, hs_allocs), file=sys.stderr)
            ht_bytes = ht_calls = None
            if have_heaptrack:
                d = os.path.join(work, name + "-heaptrack")
                shutil.rmtree(d, ignore_errors=True)
                os.mkdir(d)
                run = run_bench.measure(["heaptrack", "-o", os.path.join(d, "t")] + argv, d,
                                        env_extra=env)
                ht_files, ht_bytes = traced(d)
                ht_calls = heaptrack_calls(ht_files)
                if run.rc != 0 or ht_calls is None:
                    ht_bytes = -ht_bytes  # shown as failed
            print("%-8s %d events, %d allocations: heapsight %d bytes (%d files), compact %s, "
                  "heaptrack %s bytes, %s allocation calls" % (
                      name, events, hs_allocs, hs_bytes, len(files), cp_bytes, ht_bytes,
                      ht_calls), file=sys.stderr)
            rows.append((description, events, hs_allocs, hs_bytes, len(files), ht_bytes,
                         ht_calls, cp_bytes))

        model, cores, mem = run_bench.machine_info()
        settings = ", ".join(args.env) if args.env else "both tools with their defaults"
        lines = ["Measured %s on %s (%d cores, %s RAM), commit %s; one run each, %s; %s." % (
                     datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     model, cores, mem, run_bench.git_commit(repo), settings,
                     run_bench.tool_version(["heaptrack", "--version"])
                     if have_heaptrack else "heaptrack not run"),
                 "",
                 "| program | events | allocations (heapsight / heaptrack_print) | "
                 "heapsight bytes | bytes/event | heaptrack bytes | bytes/event | "
                 "heapsight / heaptrack | compact bytes | compact / heaptrack |",
                 "|---|---|---|---|---|---|---|---|---|---|"]
        for description, events, allocs, hs, nfiles, ht, calls, cp in rows:
            per = lambda b: "%.2f" % (b / events) if events else "-"  # noqa: E731
            if ht is None:
                ht_cells = "- | - | -"
            elif ht < 0:
                ht_cells = "%s (failed) | %s | -" % (run_bench.fmt_bytes(-ht), per(-ht))
            else:
                ht_cells = "%s | %s | %.2f" % (run_bench.fmt_bytes(ht), per(ht), hs / ht)
            files = " (%d files)" % nfiles if nfiles > 1 else ""
            if cp is None:
                cp_cells = "- | -"
            elif ht is None:
                cp_cells = "%s | -" % run_bench.fmt_bytes(cp)
            else:
                cp_cells = "%s | %.2f%s" % (run_bench.fmt_bytes(cp), cp / abs(ht),
                                            " (truncated heaptrack)" if ht < 0 else "")
            lines.append("| %s | %s | %s / %s | %s%s | %s | %s | %s |" % (
                description, "{:,}".format(events), "{:,}".format(allocs),
                "{:,}".format(calls) if calls is not None else "-",
                run_bench.fmt_bytes(hs), files, per(hs), ht_cells, cp_cells))
        run_bench.publish(lines, args.write_doc, "trace-size")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
