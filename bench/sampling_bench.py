#!/usr/bin/env python3
"""bench/sampling_bench.py: sampled heapsight vs plain (issue 15 target 4).

Runs each workload plain and with the build's libheapsight.so preloaded
with HEAPSIGHT_SAMPLE_BYTES=524288 (Go's default rate), and, with --before
PATH, with another libheapsight.so (e.g. main's) the same way, in rounds
(every mode once per round, so a change in machine load hits all alike).
Reports the median wall and CPU (user+system) seconds and their ratios to
plain. Workloads:

  alloc_bench  the 12-frame malloc loop (bench/alloc_bench, 2,000,000 allocations)
  cc1plus      GCC's cc1plus -O2 on bench/compile_workload.cc (preprocessed)
  python3      build and sort a 1,000,000-entry dict, PYTHONMALLOC=malloc
  perl         word count on 3,000,000 words (20 MB) of text
  sqlite3      an in-memory database: 1,000,000 inserts, an index, grouped queries

Every real program runs a second or more plain, so a millisecond of
start-up or of noise is 0.1%.

--callgrind adds instruction counts (stable on a loaded machine): on
alloc_bench, per event and per free (two run lengths, so start-up cancels
out: the whole process per event, and the free hook's own instructions per
free); and for every real program, on a smaller input of the same workload
(callgrind runs 50x slower), plain against sampled, with the sampled run's
extra instructions split by where they go: the loader (symbol lookups and
relocations for one more library), start-up (StartTracing: options, trace
file, modules, libunwind, filter), exit (FinishTrace: flushes, the end
record), the recorder's generic paths (sampled events: stacks, records,
table; inclusive), and the rest, which is the hooks' own code per call
(sampled mode's fast paths, and generic hook bodies).

With --write-doc FILE the table replaces the block between
`<!-- sampling:begin -->` and `<!-- sampling:end -->` of FILE.

Standard library only. Usage (from the repo root, after ninja):
  python3 bench/sampling_bench.py --build build-dev [--runs 5] [--before /path/libheapsight.so]
"""

import argparse
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_bench  # noqa: E402  (measure, machine_info, git_commit, publish)

PERIOD = 524288
SQL = """
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v TEXT, n INTEGER);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d)
INSERT INTO t(k, v, n) SELECT 'key' || (i * 7919 %% 100003), hex(randomblob(24)), i %% 977 FROM c;
CREATE INDEX tk ON t(k);
SELECT count(*), sum(length(v)) FROM t;
SELECT n, count(*), max(k) FROM t GROUP BY n ORDER BY 2 DESC LIMIT 3;
SELECT count(DISTINCT k) FROM t;
SELECT k, group_concat(v) FROM t WHERE n < 50 GROUP BY k ORDER BY k LIMIT 2;
"""


# The callgrind rows' smaller C++ input (cc1plus -O2 on it: about 1 s
# plain): a few containers and algorithms instead of compile_workload.cc's
# <regex> and <iostream>.
SMALL_CC = """#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>
int main() {
  std::map<std::string, std::vector<int>> groups;
  for (int i = 0; i < 1000; ++i) groups[std::to_string(i % 37)].push_back(i);
  std::vector<std::shared_ptr<std::string>> names;
  for (const auto& [key, values] : groups) names.push_back(std::make_shared<std::string>(key));
  std::sort(names.begin(), names.end(), [](const auto& a, const auto& b) { return *a < *b; });
  return static_cast<int>(names.size());
}
"""


def workloads(repo, build, work, rows, small=False):
    """(key, label, argv, env) per row; `small`: the callgrind rows' inputs."""
    out = []
    tag = "small." if small else ""
    for key in rows:
        if key == "alloc_bench":
            if small:
                continue  # callgrind_rows measures it per event
            out.append((key, "alloc_bench, 12-frame loop, 2,000,000 allocations, 1 thread",
                        [os.path.join(build, "bench", "alloc_bench"), "--allocs", "2000000"], {}))
        elif key == "cc1plus":
            cc1plus = subprocess.run(["g++", "-print-prog-name=cc1plus"], capture_output=True,
                                     text=True).stdout.strip()
            if not os.path.isabs(cc1plus):
                continue
            src = os.path.join(repo, "bench", "compile_workload.cc")
            if small:
                src = os.path.join(work, "small_workload.cc")
                with open(src, "w") as f:
                    f.write(SMALL_CC)
            ii = os.path.join(work, tag + "workload.ii")
            subprocess.run(["g++", "-std=c++17", "-E", src, "-o", ii], check=True)
            out.append((key, "cc1plus -O2 on " + ("a small C++ file (<map>, <string>, <vector>)"
                                                   if small else "bench/compile_workload.cc"),
                        [cc1plus, "-fpreprocessed", "-quiet", "-O2", ii, "-o", "/dev/null"], {}))
        elif key == "python3":
            n = 100000 if small else 1000000
            script = os.path.join(work, tag + "dict_sort.py")
            with open(script, "w") as f:
                f.write(run_bench.PYTHON_SCRIPT % n)
            out.append((key, "python3: build and sort a {:,}-entry dict, PYTHONMALLOC=malloc".format(
                n), ["/usr/bin/python3", script], {"PYTHONMALLOC": "malloc"}))
        elif key == "perl":
            n = 150000 if small else 3000000
            text = os.path.join(work, tag + "words.txt")
            with open(text, "w") as f:
                words = ["w%d" % (i * 7919 % 50021) for i in range(n)]
                for i in range(0, len(words), 12):
                    f.write(" ".join(words[i:i + 12]) + "\n")
            out.append((key, "perl: word count on {:,} words ({:,} bytes) of text".format(
                n, os.path.getsize(text)),
                ["/usr/bin/perl", "-ne", "$c{$_}++ for split; END { print scalar(keys %c), "
                 "\"\\n\" }", text], {}))
        elif key == "sqlite3" and shutil.which("sqlite3"):
            n = 20000 if small else 1000000
            sql = os.path.join(work, tag + "workload.sql")
            with open(sql, "w") as f:
                f.write(SQL % n)
            out.append((key, "sqlite3 :memory:, {:,} inserts, index, grouped queries".format(n),
                        ["sqlite3", ":memory:", ".read " + sql], {}))
    return out


def sampled_env(preload, work):
    return {"LD_PRELOAD": preload, "HEAPSIGHT_SAMPLE_BYTES": str(PERIOD),
            "HEAPSIGHT_OUTPUT": os.path.join(work, "s.%p.hst")}


def clear_traces(work):
    for name in os.listdir(work):
        if name.startswith("s.") and name.endswith(".hst"):
            os.unlink(os.path.join(work, name))


def callgrind(argv, work, env):
    out = os.path.join(work, "cg.out")
    run = run_bench.measure(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] +
                            argv, work, env_extra=env)
    m = re.search(r"Collected : (\d+)", run.stderr)
    if run.rc != 0 or not m:
        return None
    # Exclusive instructions of the free hook and of everything it runs of
    # ours, inlined (entries named after the header they came from, without
    # an object) or not: the recorder's free path, the table's Remove.
    annotated = subprocess.run(["callgrind_annotate", "--inclusive=no", "--auto=no", "--threshold=100", out],
                               capture_output=True, text=True).stdout
    hook = 0
    ours = re.compile(r"(?:free|heapsight::preload::(?:TracedFree\w*|LiveTable::Remove|"
                      r"IsBootstrapPointer|InBootstrapArena|EnsureRealFunctions\w*)\(.*)$")
    for line in annotated.splitlines():
        m2 = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*?):(\S.*?)(?: \[(.*)\])?$", line)
        if not m2 or not ours.fullmatch(m2.group(3)) or m2.group(2).startswith("./"):
            continue  # not ours (glibc's sources are named ./malloc/...)
        if m2.group(4) and "libheapsight" not in m2.group(4):
            continue  # the allocator's own free
        hook += int(m2.group(1).replace(",", ""))
    libc = 0
    clear_traces(work)
    return int(m.group(1)), hook, libc, run.events


def callgrind_rows(build, work, modes):
    bench = os.path.join(build, "bench", "alloc_bench")
    lines = ["Callgrind on `alloc_bench` (12 frames), `--allocs 20000` and `--allocs 60000` "
             "(the difference cancels start-up): instructions per event (allocation or free) of "
             "the whole process, and per free of the free hook itself (exclusive instructions "
             "of libheapsight's `free` and of the recorder and table code it runs, inlined or "
             "not; the allocator's `free` not included):", "",
             "| mode | Ir/event | overhead Ir/event | hook Ir/free |", "|---|---|---|---|"]
    plain = None
    for label, env in modes:
        a = callgrind([bench, "--allocs", "20000"], work, env)
        b = callgrind([bench, "--allocs", "60000"], work, env)
        if a is None or b is None:
            lines.append("| {} | failed | | |".format(label))
            continue
        per_event = (b[0] - a[0]) / (b[3] - a[3])
        frees = (b[3] - a[3]) / 2
        hook = (b[1] - a[1]) / frees if b[1] else None
        if plain is None:
            plain = per_event
        lines.append("| {} | {:.0f} | {} | {} |".format(
            label, per_event, "-" if label == "plain" else "{:.0f}".format(per_event - plain),
            "-" if hook is None else "{:.0f}".format(hook)))
    return lines


def parse_callgrind(path):
    """(total Ir, self Ir per object basename, {(function, object): (calls, inclusive Ir)},
    {(caller function, callee function, callee object): inclusive Ir})."""
    names, objs = {}, {}
    self_by_obj = {}
    incl = {}
    edges = {}
    caller = None
    total = 0
    fn_ob = cur_ob = None
    callee = callee_ob = None
    pending = None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line)
            if m:
                kind, i, name = m.groups()
                if name:
                    names[i] = name
                if kind == "cfn":
                    callee = names.get(i)
                else:
                    caller = names.get(i)
                    callee_ob = None
                    cur_ob = fn_ob
                continue
            m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line)
            if m:
                kind, i, name = m.groups()
                if name:
                    objs[i] = os.path.basename(name)
                if kind == "cob":
                    callee_ob = objs.get(i)
                else:
                    fn_ob = cur_ob = objs.get(i)
                continue
            m = re.match(r"^calls=(\d+)", line)
            if m:
                pending = int(m.group(1))
                continue
            m = re.match(r"^(?:summary|totals):\s*(\d+)", line)
            if m:
                total = max(total, int(m.group(1)))
                continue
            if not line or not (line[0].isdigit() or line[0] in "+-*"):
                continue
            parts = line.split()
            cost = int(parts[1]) if len(parts) > 1 else 0
            if pending is not None:
                key = (callee, callee_ob or fn_ob)
                c, v = incl.get(key, (0, 0))
                incl[key] = (c + pending, v + cost)
                edge = (caller, callee, key[1])
                edges[edge] = edges.get(edge, 0) + cost
                pending = None
                callee_ob = None
            else:
                self_by_obj[fn_ob] = self_by_obj.get(fn_ob, 0) + cost
    return total, self_by_obj, incl, edges


def callgrind_profile(argv, work, env, name):
    out = os.path.join(work, "cg." + name)
    run = run_bench.measure(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv,
                            work, env_extra=env)
    clear_traces(work)
    if run.rc != 0:
        return None
    return parse_callgrind(out)


# The hooks: every interposed allocation function (their calls are the
# per-event count).
HOOKS = ("malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign",
         "aligned_alloc", "memalign", "valloc", "pvalloc", "free_sized", "free_aligned_sized")


def split_overhead(plain, sampled):
    """Where the sampled run's extra instructions go (callgrind_rows)."""
    total_p, self_p = plain[0], plain[1]
    total_s, self_s, incl, edges = sampled
    ours = lambda obj: obj is not None and "libheapsight" in obj

    def incl_of(prefix):
        return sum(v for (fn, ob), (c, v) in incl.items()
                   if fn is not None and ours(ob) and fn.startswith(prefix))
    loader = sum(v for ob, v in self_s.items() if ob and ob.startswith("ld-linux")) - sum(
        v for ob, v in self_p.items() if ob and ob.startswith("ld-linux"))
    startup = incl_of("heapsight::preload::StartTracing()")
    exit_ = incl_of("heapsight::preload::FinishTrace(") + incl_of(
        "heapsight::preload::FlushAllForFini(")
    # Less the real free/realloc these call (a sampled block's free is
    # the allocator's work in the plain run too).
    real = sum(v for (caller, callee, ob), v in edges.items()
               if caller is not None and ob is not None and ob.startswith("libc")
               and callee in ("free", "realloc") and (
                   caller.startswith("heapsight::preload::TracedFreeSlow(")
                   or caller.startswith("(anonymous namespace)::CallRealloc")))
    recorder = sum(incl_of(f) for f in (
        "heapsight::preload::RecordAllocSlow(", "heapsight::preload::TracedFreeSlow(",
        "heapsight::preload::TracedRealloc(")) - real
    calls = sum(c for (fn, ob), (c, v) in incl.items() if ours(ob) and fn is not None and (
        fn in HOOKS or fn.startswith("operator new") or fn.startswith("operator delete")))
    extra = total_s - total_p
    hooks = extra - loader - startup - exit_ - recorder
    return extra, loader, startup, exit_, recorder, hooks, calls


def callgrind_real_rows(repo, build, work, rows, modes):
    lines = ["Callgrind on the real programs, on smaller inputs of the same workloads (instruction "
             "counts do not depend on the load): the sampled run's extra instructions over plain, "
             "split into the loader (symbol lookups and relocations for one more library), "
             "start-up (`StartTracing`, inclusive), exit (`FinishTrace`, inclusive), the "
             "recorder's generic paths (`RecordAllocSlow`, `TracedFreeSlow`, `TracedRealloc`, "
             "inclusive: the sampled events, and the few calls a fast path sends on), and the "
             "rest: the hooks' own instructions, per hook call (every interposed allocation "
             "and free function).", "",
             "| workload | mode | Ir | overhead | loader | start-up | exit | recorder | hooks "
             "| hook calls | hooks Ir/call |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, label, argv, env in workloads(repo, build, work, rows, small=True):
        plain = None
        for mode, mode_env in modes:
            e = dict(env)
            e.update(mode_env)
            prof = callgrind_profile(argv, work, e, key + "." + mode.replace(", ", "_"))
            if prof is None:
                lines.append("| {} | {} | failed | | | | | | | | |".format(label, mode))
                continue
            if plain is None:
                plain = prof
                lines.append("| {} | {} | {:,} | - | | | | | | | |".format(label, mode, prof[0]))
                continue
            extra, loader, startup, exit_, recorder, hooks, calls = split_overhead(plain, prof)
            pct = lambda v: "{:,} ({:.2f}%)".format(v, 100.0 * v / plain[0])
            lines.append("| {} | {} | {:,} | {} | {} | {} | {} | {} | {} | {:,} | {} |".format(
                label, mode, prof[0], pct(extra), pct(loader), pct(startup), pct(exit_),
                pct(recorder), pct(hooks), calls,
                "{:.1f}".format(hooks / calls) if calls else "-"))
        print("{}: callgrind done".format(key), file=sys.stderr)
    return lines


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(repo, "build"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rows", default="alloc_bench,cc1plus,python3,perl,sqlite3")
    ap.add_argument("--before", metavar="SO", help="another libheapsight.so to compare")
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--write-doc", metavar="FILE")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    preload = os.path.join(build, "preload", "libheapsight.so")
    work = tempfile.mkdtemp(prefix="heapsight-sampling.")
    load_before = os.getloadavg()[0]
    modes = [("plain", {}), ("sampled", sampled_env(preload, work))]
    if args.before:
        modes.insert(1, ("sampled, before", sampled_env(os.path.abspath(args.before), work)))
    try:
        rows = workloads(repo, build, work, args.rows.split(","))
        results = {}
        for key, label, argv, env in rows:
            for i in range(args.runs):
                for mode, mode_env in modes:
                    e = dict(env)
                    e.update(mode_env)
                    run = run_bench.measure(argv, work, env_extra=e)
                    clear_traces(work)
                    if run.rc != 0:
                        sys.exit("sampling_bench: {} {} exited {}: {}".format(
                            key, mode, run.rc, run.stderr[-400:]))
                    results.setdefault((key, mode), []).append(run)
            print("{}: done".format(key), file=sys.stderr)
        model, cores, mem = run_bench.machine_info()
        lines = ["Measured {} on {} ({} cores, {} RAM), commit {}; load average {:.1f} before "
                 "and {:.1f} after (a shared machine: CPU seconds are the steadier figure). "
                 "Median of {} runs, modes interleaved; sampled = LD_PRELOAD of libheapsight.so "
                 "with HEAPSIGHT_SAMPLE_BYTES={}.".format(
                     datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     model, cores, mem, run_bench.git_commit(repo), load_before,
                     os.getloadavg()[0], args.runs, PERIOD), "",
                 "| workload | mode | wall s | wall ratio | CPU s | CPU ratio | target |",
                 "|---|---|---|---|---|---|---|"]
        for key, label, _, _ in rows if args.runs > 0 else []:
            plain_runs = results[(key, "plain")]
            pw = statistics.median(r.wall for r in plain_runs)
            pc = statistics.median(r.cpu for r in plain_runs)
            target = 1.15 if key == "alloc_bench" else 1.02
            for mode, _ in modes:
                rs = results[(key, mode)]
                w = statistics.median(r.wall for r in rs)
                c = statistics.median(r.cpu for r in rs)
                verdict = "-"
                if mode == "sampled":
                    verdict = "<= {:.2f}x: {}".format(
                        target, "met" if min(w / pw, c / pc) <= target else "NOT met")
                lines.append("| {} | {} | {:.3f} | {:.3f}x | {:.3f} | {:.3f}x | {} |".format(
                    label, mode, w, w / pw, c, c / pc, verdict))
        if args.runs > 0:
            run_bench.publish(lines, args.write_doc, "sampling")
        if args.callgrind:
            run_bench.publish(callgrind_rows(build, work, modes), args.write_doc,
                              "sampling-callgrind")
            run_bench.publish(callgrind_real_rows(repo, build, work, args.rows.split(","), modes),
                              args.write_doc, "sampling-callgrind-real")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
