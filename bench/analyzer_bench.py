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
for i in range(400000):
    d['key%d' % i] = [i, str(i)]
a = sorted(d.items(), key=lambda kv: kv[0][::-1])
b = sorted(d, key=lambda k: len(k) * 1000003 % 7919)
print(len(a), len(b))
"""

PERL_SCRIPT = r"""
my %c; while (<>) { $c{lc $_}++ for /(\w+)/g } 
my @top = sort { $c{$b} <=> $c{$a} } keys %c; print scalar(@top), "\n";
"""

SQL = """
create table t(a integer primary key, b text, c integer);
with recursive n(i) as (select 1 union all select i + 1 from n where i < 200000)
insert into t select i, hex(randomblob(16)), i % 1000 from n;
create index tc on t(c, b);
select c, count(*), max(b) from t group by c order by 3 limit 5;
"""


def programs(work):
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
    for name, text in (("py", PY_SCRIPT), ("pl", PERL_SCRIPT)):
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
    }


def timed(argv, env=None, stdin=None):
    """(wall s, max RSS KiB, rc) of argv under /usr/bin/time -v; stdout dropped."""
    full = ["/usr/bin/time", "-v"] + argv
    with open(stdin or os.devnull) as inp:
        p = subprocess.run(full, env=env, stdin=inp, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", p.stderr)
    secs = (int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3)))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return secs, rss, p.returncode, p.stderr


def instructions(argv, env, work):
    out = os.path.join(work, "callgrind.out")
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv,
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    m = re.search(r"Collected : (\d+)", p.stderr)
    return int(m.group(1)) if m else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapsight", default=os.path.join(REPO, "build-dev", "cli", "heapsight"))
    ap.add_argument("--programs", default="python,perl,cc1plus,git,sqlite")
    ap.add_argument("--threads", default="1,2", help="decode thread counts for report")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--work", default=None, help="keep traces here (default: a temp dir)")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="heapsight-analyzer-bench-")
    os.makedirs(work, exist_ok=True)
    progs = programs(work)
    have_heaptrack = shutil.which("heaptrack") and shutil.which("heaptrack_print")
    print("| program | trace MB (hs / ht) | heapsight report: wall s, RSS MB | "
          "heaptrack_print: wall s, RSS MB | wall ratio | RSS ratio | Ir hs / ht |")
    print("|---|---|---|---|---|---|---|")
    for name in args.programs.split(","):
        argv, extra, stdin = progs[name]
        env = dict(os.environ, **extra)
        d = os.path.join(work, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        _, _, rc, err = timed([args.heapsight, "record", "-q", "-o", os.path.join(d, "t.%p.hst"),
                               "--"] + argv, env, stdin)
        traces = sorted((os.path.join(d, f) for f in os.listdir(d) if f.endswith(".hst")),
                        key=os.path.getsize)
        if not traces:
            print("| %s | heapsight record failed (%d): %s |" % (name, rc, err[-200:]))
            continue
        hs = traces[-1]
        ht = None
        if have_heaptrack:
            timed(["heaptrack", "-o", os.path.join(d, "ht")] + argv, env, stdin)
            hts = [os.path.join(d, f) for f in os.listdir(d) if f.startswith("ht")]
            ht = max(hts, key=os.path.getsize) if hts else None
        renv = dict(os.environ, HEAPSIGHT_NO_CACHE="1")
        cols = []
        for threads in args.threads.split(","):
            tenv = dict(renv, HEAPSIGHT_DECODE_THREADS=threads)
            best = min((timed([args.heapsight, "report", hs], tenv) for _ in range(args.runs)),
                       key=lambda r: r[0])
            if best[2] != 0:
                print("| %s | heapsight report failed: %s |" % (name, best[3][-200:]))
            cols.append((threads, best))
        hs_wall, hs_rss = cols[-1][1][0], cols[-1][1][1]
        ht_wall = ht_rss = 0.0
        if ht:
            bt = min((timed(["heaptrack_print", ht]) for _ in range(args.runs)), key=lambda r: r[0])
            ht_wall, ht_rss = bt[0], bt[1]
        ir = ""
        if args.callgrind:
            i_hs = instructions([args.heapsight, "report", hs],
                                dict(renv, HEAPSIGHT_DECODE_THREADS="1"), d)
            i_ht = instructions(["heaptrack_print", ht], renv, d) if ht else 0
            ir = "%.2fG / %.2fG" % (i_hs / 1e9, i_ht / 1e9)
        per_thread = ", ".join("%s thr %.2f s" % (t, r[0]) for t, r in cols)
        print("| %s | %.1f / %.1f | %.2f s (%s), %.0f MB | %.2f s, %.0f MB | %s | %s | %s |" % (
            name, os.path.getsize(hs) / 1e6, (os.path.getsize(ht) / 1e6) if ht else 0,
            hs_wall, per_thread, hs_rss / 1024, ht_wall, ht_rss / 1024,
            ("%.2f" % (hs_wall / ht_wall)) if ht_wall else "-",
            ("%.2f" % (hs_rss / ht_rss)) if ht_rss else "-", ir), flush=True)


if __name__ == "__main__":
    main()
