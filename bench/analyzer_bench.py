#!/usr/bin/env python3
"""bench/analyzer_bench.py: `heapsight report` against `heaptrack_print`.

Records real programs (python dict build + sorts with PYTHONMALLOC=malloc,
perl word count, cc1plus -O2 on bench/compile_workload.cc, git log -p,
sqlite3) under `heapsight record` and under heaptrack, then analyzes each
trace with `heapsight report` and `heaptrack_print` under /usr/bin/time -v
(wall seconds, peak RSS), the heapsight report once per decode thread count
(HEAPSIGHT_DECODE_THREADS). With --callgrind, also counts instructions of
both analyzers (valgrind --tool=callgrind; the machine may be shared, so
instruction counts are the stable speed measure).

Usage (from the repo root, after ninja):
  python3 bench/analyzer_bench.py --heapsight build-dev/cli/heapsight \
      [--programs python,perl,cc1plus,git,sqlite] [--callgrind] [--runs 3]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PY_SCRIPT = r"""
d = {}
for i in range(ENTRIES):
    d['key%d' % i] = [i, str(i)]
a = sorted(d.items(), key=lambda kv: kv[0][::-1])
b = sorted(d, key=lambda k: len(k) * 1000003 % 7919)
print(len(a), len(b))
"""

PERL_SCRIPT = r"""
my %c; while (<>) { $c{lc $_}++ for /(\w+)/g } 
my @top = sort { $c{$b} <=> $c{$a} } keys %c; print scalar(@top), "\n";
"""

NODE_SCRIPT = r"""
const m = new Map();
for (let i = 0; i < 300000; i++) m.set('key' + i, {i: i, s: String(i).repeat(3)});
const a = Array.from(m.keys()).sort((x, y) => x.length - y.length || (x < y ? -1 : 1));
console.log(m.size, a.length);
"""

SQL = """
create table t(a integer primary key, b text, c integer);
with recursive n(i) as (select 1 union all select i + 1 from n where i < 200000)
insert into t select i, hex(randomblob(16)), i % 1000 from n;
create index tc on t(c, b);
select c, count(*), max(b) from t group by c order by 3 limit 5;
"""


def programs(work, py_entries=1000000):
    """name -> (argv, env additions, stdin file or None)."""
    words = os.path.join(work, "words.txt")
    if not os.path.exists(words):
        import random
        rnd = random.Random(16)
        vocab = ["w%d" % i for i in range(50000)]
        with open(words, "w") as f:
            size = 0
            while size < 10 << 20:
                line = " ".join(rnd.choice(vocab) for _ in range(12)) + "\n"
                f.write(line)
                size += len(line)
    ii = os.path.join(work, "workload.ii")
    if not os.path.exists(ii):
        subprocess.run(["g++", "-std=c++17", "-E", os.path.join(REPO, "bench", "compile_workload.cc"),
                        "-o", ii], check=True)
    cc1plus = subprocess.run(["g++", "-print-prog-name=cc1plus"], capture_output=True,
                             text=True).stdout.strip()
    # Scripts go in files: heaptrack stores the command line in its trace,
    # and a newline in an argument breaks its trace (a -c script did).
    script = {}
    for name, text in (("py", PY_SCRIPT.replace("ENTRIES", str(py_entries))), ("pl", PERL_SCRIPT),
                       ("js", NODE_SCRIPT)):
        script[name] = os.path.join(work, "script." + name)
        with open(script[name], "w") as f:
            f.write(text)
    sql = os.path.join(work, "q.sql")
    with open(sql, "w") as f:
        f.write(SQL)
    return {
        "python": (["/usr/bin/python3", script["py"]], {"PYTHONMALLOC": "malloc"}, None),
        "perl": (["/usr/bin/perl", script["pl"], words], {}, None),
        "cc1plus": ([cc1plus, "-fpreprocessed", "-quiet", "-O2", ii, "-o", "/dev/null"], {}, None),
        "git": (["/usr/bin/git", "-C", REPO, "--no-pager", "log", "-p", "-n", "400"], {}, None),
        "sqlite": (["/usr/bin/sqlite3", ":memory:"], {}, sql),
        "node": ([shutil.which("node") or "/usr/bin/node", script["js"]], {}, None),
    }


def timed(argv, env=None, stdin=None):
    """(wall s, max RSS KiB, rc, stderr, cpu s) of argv under /usr/bin/time -v;
    stdout dropped. cpu is user + system time of every thread."""
    full = ["/usr/bin/time", "-v"] + argv
    with open(stdin or os.devnull) as inp:
        p = subprocess.run(full, env=env, stdin=inp, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", p.stderr)
    secs = (int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3)))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    cpu = sum(float(re.search(r"%s time \(seconds\): ([\d.]+)" % k, p.stderr).group(1))
              for k in ("User", "System"))
    return secs, rss, p.returncode, p.stderr, cpu


def instructions(argv, env, work):
    out = os.path.join(work, "callgrind.out")
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv,
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    m = re.search(r"Collected : (\d+)", p.stderr)
    return int(m.group(1)) if m else 0


def record(name, progs, work, recorder, reuse):
    """(heapsight trace, heaptrack trace or None) of program `name`."""
    argv, extra, stdin = progs[name]
    env = dict(os.environ, **extra)
    d = os.path.join(work, name)

    def found():
        hs = sorted((os.path.join(d, f) for f in os.listdir(d) if f.endswith(".hst")),
                    key=os.path.getsize)
        ht = [os.path.join(d, f) for f in os.listdir(d) if f.startswith("ht")]
        return (hs[-1] if hs else None), (max(ht, key=os.path.getsize) if ht else None)

    if reuse and os.path.isdir(d):
        hs, ht = found()
        if hs:
            return hs, ht
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    timed([recorder, "record", "-q", "-o", os.path.join(d, "t.%p.hst"), "--"] + argv, env, stdin)
    if shutil.which("heaptrack") and shutil.which("heaptrack_print"):
        timed(["heaptrack", "-o", os.path.join(d, "ht")] + argv, env, stdin)
    return found()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapsight", default=os.path.join(REPO, "build-dev", "cli", "heapsight"))
    ap.add_argument("--recorder", default=os.path.join(REPO, "build-dev", "cli", "heapsight"),
                    help="the heapsight binary that records (next to its preload library)")
    ap.add_argument("--alt", default=None,
                    help="a second heapsight binary (e.g. the previous commit's), timed on the "
                         "same traces, interleaved")
    ap.add_argument("--programs", default="python,perl,cc1plus,git,sqlite,node")
    ap.add_argument("--threads", default="2", help="decode thread counts for report")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--py-entries", type=int, default=1000000)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--work", default=None, help="keep traces here (default: a temp dir)")
    ap.add_argument("--reuse", action="store_true", help="reuse the traces found in --work")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="heapsight-analyzer-bench-")
    os.makedirs(work, exist_ok=True)
    progs = programs(work, args.py_entries)
    bins = [("hs", args.heapsight)] + ([("alt", args.alt)] if args.alt else [])
    print("| program | trace MB (hs / ht) | " +
          " | ".join("%s report: wall s, CPU s, RSS MB" % b for b, _ in bins) +
          " | heaptrack_print: wall s, CPU s, RSS MB | wall ratio | CPU ratio | RSS ratio | Ir hs / ht |")
    print("|---" * (len(bins) + 7) + "|")
    for name in args.programs.split(","):
        hs, ht = record(name, progs, work, args.recorder, args.reuse)
        if not hs:
            print("| %s | heapsight record failed |" % name)
            continue
        renv = dict(os.environ, HEAPSIGHT_NO_CACHE="1")
        results = {}
        for run in range(args.runs):  # interleaved: hs, alt, heaptrack_print, hs, ...
            for b, binary in bins:
                for threads in args.threads.split(","):
                    tenv = dict(renv, HEAPSIGHT_DECODE_THREADS=threads)
                    r = timed([binary, "report", hs], tenv)
                    if r[2] != 0:
                        print("| %s | %s report failed: %s |" % (name, b, r[3][-200:]))
                    results.setdefault((b, threads), []).append(r)
            if ht:
                results.setdefault(("ht", ""), []).append(timed(["heaptrack_print", ht]))

        def best(key):
            rs = results.get(key)
            if not rs:
                return None
            return (min(r[0] for r in rs), min(r[4] for r in rs), min(r[1] for r in rs) / 1024)

        last = args.threads.split(",")[-1]
        cells = []
        for b, _ in bins:
            w, c, m = best((b, last))
            cells.append("%.2f, %.2f, %.0f" % (w, c, m))
        h = best(("ht", ""))
        hs_best = best(("hs", last))
        ir = ""
        if args.callgrind:
            i_hs = instructions([args.heapsight, "report", hs],
                                dict(renv, HEAPSIGHT_DECODE_THREADS="1"), work)
            i_ht = instructions(["heaptrack_print", ht], renv, work) if ht else 0
            ir = "%.2fG / %.2fG" % (i_hs / 1e9, i_ht / 1e9)
        ratio = lambda i: ("%.2f" % (hs_best[i] / h[i])) if h and h[i] else "-"
        print("| %s | %.1f / %.1f | %s | %s | %s | %s | %s | %s |" % (
            name, os.path.getsize(hs) / 1e6, (os.path.getsize(ht) / 1e6) if ht else 0,
            " | ".join(cells), ("%.2f, %.2f, %.0f" % h) if h else "-",
            ratio(0), ratio(1), ratio(2), ir), flush=True)


if __name__ == "__main__":
    main()
