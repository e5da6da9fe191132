#!/usr/bin/env python3
"""bench/run_bench.py: heapsight vs heaptrack vs valgrind on bench/alloc_bench.

Runs the allocation microbenchmark plain, under `heapsight record` (end to
end: the program plus its compressed trace written), under `heaptrack`
(end to end: including heaptrack_interpret and zstd) and under valgrind
memcheck, with 1 and 2 threads, the median of --runs runs each. Prints a
markdown table: wall seconds, slowdown vs plain, CPU seconds, trace bytes,
bytes per event, and the cost per operation (an operation is one allocation
or one free).

With --analyze it also times the analyzers on the 1-thread traces:
`heapsight report` (and `heapsight leaks`) vs `heaptrack_print`, in events per second and
peak RSS.

With --family it runs the depth family instead (issue 15): alloc_bench at
depths 12, 60 and 200, the recursive mode (60 fixed outer frames, 1-8
varying top frames), the 12- and 60-frame loops with 2 threads, python3 building
and sorting a dict (PYTHONMALLOC=malloc), perl counting words, git log -p on this
repository and an sqlite3 workload (the rows of issue 15's table), node building and
sorting an array of objects, ruby sorting a hash of string keys, cc1plus -O2 on
bench/compile_workload.cc (preprocessed once) and a bash loop of short
`echo | sort | wc -l` pipelines (3 forks and 2 execs per iteration: 1,500 traces),
each plain, under heapsight and under heaptrack in the same rounds (heaptrack is
skipped on cc1plus and recursive unless --heaptrack-all: it dies with
std::bad_alloc, on cc1plus after ~60 s); it prints slowdowns, the overhead
ratio (heapsight - 1) / (heaptrack - 1) and heapsight's overhead CPU ns per
event (alloc_bench rows), and each tool's peak RSS (every command runs under
/usr/bin/time, whose %M is the program's own peak, see TIME). A run longer
than --time-limit seconds is killed and reported failed. --address adds a column for heapsight with
address frees (`record --pairing=address`: version-6 traces, not converted), --convert one
for address frees converted to version 4 while the program runs
(`record --pairing=address --convert-traces`). --callgrind adds callgrind instruction counts per event for the
alloc_bench rows (LD_PRELOAD of the build's libheapsight.so; two run
lengths, so start-up cancels out). --best takes each tool's fastest run
instead of the median: on the benchmark guest deep call chains run in a fast
or a 5x slower state that the host switches while a process runs
(bench/call_chain_probe.cc), and only the fastest runs compare like with
like. The family table ends with the probe's reading before and after the
runs.

With --write-doc FILE the results replace the block between the
`<!-- bench:begin -->` and `<!-- bench:end -->` markers of FILE
(docs/performance.md).

Standard library only. Usage (from the repo root, after `ninja -C build`):
  python3 bench/run_bench.py --build build [--runs 3] [--allocs 2e6] [--analyze]
"""

import argparse
import datetime
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HEAPSIGHT_VARIANTS = ("heapsight", "heapsight-fp", "heapsight-inline")
BENCH_LINE = re.compile(r"allocs=(\d+) frees=(\d+) wall_s=([0-9.]+)")


class Run:
    """One measured process: wall and CPU seconds, peak RSS, bench output."""

    def __init__(self, wall, cpu, maxrss_kb, rc, stdout, stderr):
        self.wall = wall
        self.cpu = cpu
        self.maxrss_kb = maxrss_kb
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.timed_out = False  # killed at measure()'s time limit
        m = BENCH_LINE.search(stdout)
        self.events = int(m.group(1)) + int(m.group(2)) if m else None
        self.inner_wall = float(m.group(3)) if m else None


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HEAPSIGHT_") and k != "LD_PRELOAD"}
    return env


# Peak RSS. At execve the kernel records the replaced address space's
# high-water RSS in the process's ru_maxrss, and a child forked or vforked
# (posix_spawn, subprocess) from this script replaces a copy of this script's
# address space, or this script's own: every child started from here reports
# at least this script's peak RSS (83 MB in a family run), whatever it ran.
# GNU time is a 1 MB process: a program it forks starts from that, and its %M
# is wait4's ru_maxrss of that child, the largest of the child and of the
# descendants it waited for (heapsight record's program, heaptrack's
# interpreter and zstd). So every measured command runs under it when it is
# installed; /bin/true then reports 0.9 MB instead of 93 MB.
TIME = "/usr/bin/time"


def measure(argv, cwd, stdout=subprocess.PIPE, env_extra=None, time_limit=None,
            memory_limit_mb=None):
    """Runs argv, returns a Run with this child's own rusage (os.wait4).

    ru_maxrss is the program's own (through GNU time, see TIME). With
    time_limit (seconds) the run's process group is killed at the limit and
    the Run has timed_out set. With memory_limit_mb its processes' address
    space is limited (RLIMIT_AS): allocations beyond it fail.
    """
    env = clean_env()
    env.update(env_extra or {})
    out_path = os.path.join(cwd, ".stdout")
    err_path = os.path.join(cwd, ".stderr")
    rss_path = os.path.join(cwd, ".maxrss")
    wrapped = os.access(TIME, os.X_OK)
    if wrapped:
        argv = [TIME, "-f", "%M", "-o", rss_path, "--"] + list(argv)
    killed = []
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=out if stdout == subprocess.PIPE else stdout,
                                stderr=err, start_new_session=time_limit is not None,
                                preexec_fn=(lambda: resource.setrlimit(
                                    resource.RLIMIT_AS, (memory_limit_mb << 20,) * 2))
                                if memory_limit_mb else None)
        timer = None
        if time_limit is not None:
            def kill():
                killed.append(True)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            timer = threading.Timer(time_limit, kill)
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if timer:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path, errors="replace") as f:
        text = f.read()
    with open(err_path, errors="replace") as f:
        err_text = f.read()
    maxrss_kb = usage.ru_maxrss
    if wrapped:
        # "%M" alone, after a "Command exited with non-zero status N" line
        # when the program failed; nothing when time itself was killed (then
        # wait4's figure would be this script's floor: None instead).
        try:
            with open(rss_path) as f:
                maxrss_kb = int(f.read().split()[-1])
        except (OSError, ValueError, IndexError):
            maxrss_kb = None
        try:
            os.unlink(rss_path)
        except OSError:
            pass
    run = Run(wall, usage.ru_utime + usage.ru_stime, maxrss_kb, proc.returncode, text, err_text)
    run.timed_out = bool(killed)
    return run


def dir_bytes(directory, prefix):
    total = 0
    for name in os.listdir(directory):
        if name.startswith(prefix):
            total += os.path.getsize(os.path.join(directory, name))
    return total


def remove_prefix(directory, prefix):
    for name in os.listdir(directory):
        if name.startswith(prefix):
            os.unlink(os.path.join(directory, name))


def median_run(runs):
    """The run with the median wall time (so its other numbers go with it)."""
    ordered = sorted(runs, key=lambda r: r.wall)
    return ordered[len(ordered) // 2]


def best_run(runs):
    """The run with the least wall time (--best: on a host whose slow state
    only ever adds time, the fastest run is the one taken in the fast
    state)."""
    return min(runs, key=lambda r: r.wall)


def call_chain_state(build):
    """bench/call_chain_probe's summary line (whether deep call chains run in
    the host's slow state now), or None if it is not built."""
    probe = os.path.join(build, "bench", "call_chain_probe")
    if not os.access(probe, os.X_OK):
        return None
    out = subprocess.run([probe, "--quiet"], capture_output=True, text=True).stdout.strip()
    return out.split(" (checksum")[0] if out else None


def fmt_bytes(n):
    return "{:,}".format(n) if n else "-"


def machine_info():
    model, cores = platform.processor() or "unknown", os.cpu_count()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem = "unknown"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = "{:.1f} GiB".format(int(line.split()[1]) / 1024 / 1024)
    except OSError:
        pass
    return model, cores, mem


def tool_version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "not installed"


def git_commit(repo):
    try:
        rev = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (" + uncommitted changes" if dirty else "")
    except OSError:
        return "unknown"


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(repo, "build"), help="meson build directory")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--allocs", type=float, default=2e6, help="allocations in total per run")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--tools",
                    default="plain,heapsight,heapsight-fp,heapsight-sampled,heaptrack,valgrind",
                    help="heapsight-fp is heapsight with --option unwind=fp; heapsight-sampled "
                         "with --option sample_bytes=524288; heapsight-inline without the "
                         "writer thread (chunks written by the program's threads)")
    ap.add_argument("--valgrind-scale", type=int, default=10,
                    help="valgrind runs allocs/SCALE; its times are multiplied by SCALE")
    ap.add_argument("--bench-arg", action="append", default=[], metavar="ARG",
                    help="extra alloc_bench argument, e.g. --bench-arg=--spawn (repeatable)")
    ap.add_argument("--analyze", action="store_true",
                    help="also time heapsight report vs heaptrack_print")
    ap.add_argument("--write-doc", metavar="FILE", help="update the bench block of FILE")
    ap.add_argument("--family", action="store_true",
                    help="the depth family and interpreter rows (issue 15) instead")
    ap.add_argument("--callgrind", action="store_true",
                    help="with --family: callgrind instructions per event per depth")
    ap.add_argument("--address", action="store_true",
                    help="with --family: also heapsight with address frees "
                         "(record --pairing=address), in the same rounds")
    ap.add_argument("--convert", action="store_true",
                    help="with --family: also heapsight with address frees converted to "
                         "version 4 (record --pairing=address --convert-traces)")
    ap.add_argument("--best", action="store_true",
                    help="with --family: each tool's fastest run instead of the median (the "
                         "host's slow state for deep call chains, bench/call_chain_probe.cc, "
                         "only ever adds time)")
    ap.add_argument("--rows",
                    default="12,12x2,60,60x2,200,recursive,python3,perl,git,sqlite3,node,ruby,"
                            "cc1plus,bash",
                    help="with --family: which rows")
    ap.add_argument("--heaptrack-all", action="store_true",
                    help="with --family: also run heaptrack on the rows it is skipped on "
                         "(cc1plus and recursive, where it dies with std::bad_alloc, on "
                         "cc1plus after ~60 s)")
    ap.add_argument("--time-limit", type=float, default=600, metavar="SECONDS",
                    help="with --family: kill a run after SECONDS and report it failed")
    ap.add_argument("--heaptrack-memory-limit", type=int, default=8192, metavar="MB",
                    help="with --family --heaptrack-all: heaptrack's address space limit "
                         "(RLIMIT_AS) on the rows it is skipped on by default, so that its "
                         "interpreter fails instead of filling the machine's memory")
    args = ap.parse_args()
    if args.family:
        family(args, repo)
        return

    build = os.path.abspath(args.build)
    bench = os.path.join(build, "bench", "alloc_bench")
    heapsight = heapsight_binary(build)
    allocs = int(args.allocs)
    threads = [int(t) for t in args.threads.split(",")]
    tools = args.tools.split(",")
    if not os.access(bench, os.X_OK):
        sys.exit("run_bench: {} not built (ninja -C {} bench/alloc_bench)".format(bench, build))
    for tool, exe in (("heaptrack", "heaptrack"), ("valgrind", "valgrind")):
        if tool in tools and shutil.which(exe) is None:
            print("run_bench: {} not installed, skipped".format(exe), file=sys.stderr)
            tools.remove(tool)
    if any(t.startswith("heapsight") for t in tools) and not os.access(heapsight, os.X_OK):
        sys.exit("run_bench: {} not built".format(heapsight))

    load_before = os.getloadavg()[0]
    work = tempfile.mkdtemp(prefix="heapsight-bench.")
    results = {}  # (threads, tool) -> (Run, trace_bytes, scale) or error string
    kept = {}     # tool -> (trace paths, events) of a 1-thread run (for --analyze)
    runs = {}     # (threads, tool) -> [Run]
    sizes = {}    # (threads, tool) -> [trace bytes]
    # Rounds: every tool once per round, so a change in machine load hits all
    # tools alike instead of one tool's three runs.
    # Configurations: (label, threads, extra alloc_bench args, tools). With
    # one thread the worker runs on the main thread, whose stacks are four
    # frames shorter than a spawned worker's (and which, alone, gets the
    # coarse clock: HEAPSIGHT_CLOCK=auto). So the per-operation comparison
    # of 1 and 2 threads uses a third configuration, one spawned worker.
    configs = [(str(t), t, args.bench_arg, tools) for t in threads]
    if 1 in threads and 2 in threads and "--spawn" not in args.bench_arg:
        configs.append(("1 spawned", 1, args.bench_arg + ["--spawn"],
                        [tool for tool in tools if tool == "plain" or tool in HEAPSIGHT_VARIANTS]))
    for label, t, bench_args, config_tools in configs:
        bench_argv = [bench, "--threads", str(t), "--allocs", str(allocs)] + bench_args
        for i in range(args.runs):
            for tool in config_tools:
                key = (label, tool)
                if isinstance(results.get(key), str):
                    continue  # failed before
                tag = "{}-{}t-{}".format(tool, label.replace(" ", "-"), i)
                scale = 1
                if tool == "plain":
                    argv = bench_argv
                elif tool.startswith("heapsight"):
                    # heapsight-fp: the frame-pointer unwinder instead of libunwind.
                    # heapsight-sampled: HEAPSIGHT_SAMPLE_BYTES=524288 (Go's
                    # default rate), not a complete trace: outside the targets.
                    extra = (["--option", "unwind=fp"] if tool == "heapsight-fp" else
                             ["--option", "sample_bytes=524288"]
                             if tool == "heapsight-sampled" else [])
                    argv = [heapsight, "record", "-q"] + extra + [
                        "-o", os.path.join(work, tag + ".%p.hst"), "--"] + bench_argv
                elif tool == "heaptrack":
                    argv = ["heaptrack", "-o", os.path.join(work, tag)] + bench_argv
                elif tool == "valgrind":
                    scale = args.valgrind_scale
                    argv = ["valgrind", "--tool=memcheck", "--leak-check=full", "-q",
                            bench, "--threads", str(t), "--allocs", str(allocs // scale)
                            ] + bench_args
                else:
                    sys.exit("run_bench: unknown tool " + tool)
                # heapsight-inline: chunks compressed and written by the
                # program's threads, as before the writer thread (issue 15
                # target 3); a test switch of the preload, not an option.
                run = measure(argv, work, env_extra={"_HEAPSIGHT_TEST_WRITER": "off"}
                              if tool == "heapsight-inline" else None)
                if run.rc != 0 or run.events is None:
                    results[key] = "failed (exit {}): {}".format(
                        run.rc, run.stderr.strip()[-300:].replace("\n", " "))
                    print("{} {} threads: {}".format(tool, label, results[key]), file=sys.stderr)
                    remove_prefix(work, tag)
                    continue
                runs.setdefault(key, []).append(run)
                sizes.setdefault(key, []).append(dir_bytes(work, tag))
                if i == args.runs - 1 and label == "1" and tool in ("heapsight", "heaptrack"):
                    kept[tool] = ([os.path.join(work, n) for n in os.listdir(work)
                                   if n.startswith(tag)], run.events)
                else:
                    remove_prefix(work, tag)
                if i == args.runs - 1:
                    med = median_run(runs[key])
                    results[key] = (med, statistics.median(sizes[key]), scale)
                    print("{:12s} {} thread(s): {:.3f} s wall (median of {})".format(
                        tool, label, med.wall * scale, len(runs[key])), file=sys.stderr)

    lines = []
    model, cores, mem = machine_info()
    lines.append("Measured {} on {} ({} cores, {} RAM), commit {}; load average {:.1f} before "
                 "and {:.1f} after the runs.".format(
                     datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     model, cores, mem, git_commit(repo), load_before, os.getloadavg()[0]))
    lines.append("Workload: `alloc_bench --allocs {}{}` ({:,} allocations + {:,} frees, "
                 "12-frame stacks, sizes 8-255, half freed at once); median of {} runs. "
                 "{}; {}.".format(allocs, "".join(" " + a for a in args.bench_arg),
                                  allocs, allocs, args.runs,
                                  tool_version(["heaptrack", "--version"]),
                                  tool_version(["valgrind", "--version"])))
    lines.append("")
    lines.append("| threads | tool | wall s | slowdown | CPU s | bench's own wall s | trace bytes "
                 "| bytes/event | wall ns/op | CPU ns/op | overhead CPU ns/op |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    summary = []
    for t, _, _, config_tools in configs:
        plain = results.get((t, "plain"))
        plain_ok = isinstance(plain, tuple)
        for tool in config_tools:
            res = results.get((t, tool))
            if not isinstance(res, tuple):
                lines.append("| {} | {} | {} | | | | | | | | |".format(t, tool, res or "not run"))
                continue
            run, size, scale = res
            wall, cpu = run.wall * scale, run.cpu * scale
            events = run.events * scale
            slowdown = wall / plain[0].wall if plain_ok else float("nan")
            overhead = ((cpu - plain[0].cpu) * 1e9 / events) if plain_ok and tool != "plain" else 0
            lines.append("| {} | {} | {:.3f} | {:.1f}x | {:.3f} | {:.3f} | {} | {} | {:.1f} | {:.1f} "
                         "| {} |"
                         .format(t, tool + (" (1/{} run, x{})".format(scale, scale)
                                            if scale > 1 else ""),
                                 wall, slowdown, cpu, run.inner_wall * scale, fmt_bytes(int(size)),
                                 "{:.2f}".format(size / run.events) if size else "-",
                                 wall * 1e9 / events, cpu * 1e9 / events,
                                 "{:.1f}".format(overhead) if tool != "plain" else "-"))
        ht = results.get((t, "heaptrack"))
        for variant in HEAPSIGHT_VARIANTS if "heaptrack" in config_tools else []:
            hs = results.get((t, variant))
            if plain_ok and isinstance(hs, tuple) and isinstance(ht, tuple):
                ratio = (hs[0].wall / plain[0].wall) / (ht[0].wall / plain[0].wall)
                summary.append("- {} thread(s): {} slowdown / heaptrack slowdown = {:.2f} "
                               "(target <= 0.25: {})".format(
                                   t, variant, ratio, "met" if ratio <= 0.25 else "NOT met"))
    # The spawned single worker against 2 workers when the spawned run was
    # made, else the first two thread counts as given.
    spawned = len(configs) > len(threads)
    compared = ["1 spawned", "2"] if spawned else [str(t) for t in threads[:2]]
    for variant in HEAPSIGHT_VARIANTS:
        if len(compared) < 2 or not all(isinstance(results.get((t, variant)), tuple) and
                                        isinstance(results.get((t, "plain")), tuple)
                                        for t in compared):
            continue
        # The least CPU time of each configuration's runs: another tenant of
        # a virtual machine only ever adds to it (2-thread runs, which use
        # both cores, suffer most), so the minimum is the steadiest figure.
        per_op = []
        for t in compared:
            hs = min(runs[(t, variant)], key=lambda r: r.cpu)
            plain = min(runs[(t, "plain")], key=lambda r: r.cpu)
            per_op.append((t, (hs.cpu - plain.cpu) * 1e9 / hs.events, hs.wall * 1e9 / hs.events))
        (t1, o1, w1), (t2, o2, w2) = per_op
        summary.append("- {} cost per op, {} vs {} thread(s), least CPU of the runs: overhead "
                       "CPU {:.1f} vs {:.1f} ns/op, wall {:.1f} vs {:.1f} ns/op (target: {} "
                       "threads no costlier per op, within 5%: {})".format(
                           variant, t1, t2, o1, o2, w1, w2, t2,
                           "met" if o2 <= o1 * 1.05 else "NOT met"))
    lines.append("")
    lines.extend(summary)

    if args.analyze:
        lines.append("")
        lines.extend(analyze(heapsight, kept, work, args.runs))

    text = "\n".join(lines) + "\n"
    print(text)
    if args.write_doc:
        write_doc(args.write_doc, text)
    shutil.rmtree(work, ignore_errors=True)


FAMILY_ROWS = {
    "12": ("malloc loop, 12-frame stacks", ["--depth", "12"]),
    "60": ("malloc loop, 60-frame stacks", ["--depth", "60"]),
    "200": ("malloc loop, 200-frame stacks", ["--depth", "200"]),
    "recursive": ("recursive: 60 fixed frames + 1-8 varying top frames", ["--recursive"]),
    # The two-thread rows: the same total work split over 2 threads.
    "12x2": ("malloc loop, 12-frame stacks, 2 threads", ["--threads", "2"]),
    "60x2": ("malloc loop, 60-frame stacks, 2 threads", ["--depth", "60", "--threads", "2"]),
}
FAMILY_SQL = """create table t(a integer primary key, b text, c integer);
with recursive n(i) as (select 1 union all select i + 1 from n where i < %d)
insert into t select i, hex(randomblob(16)), i %% 1000 from n;
create index tc on t(c, b);
select c, count(*), max(b) from t group by c order by 3 limit 5;
"""
PYTHON_SCRIPT = ("d = {}\nfor i in range(%d):\n    d['k%%d' %% (i * 7919 %% 1000003)] = [i]\n"
                 "s = sorted(d.items(), key=lambda kv: kv[0][::-1])\nprint(len(s))\n")
# rows24: more real programs. node and ruby allocate most objects in their own
# heaps (V8's, Ruby's object pages), so their rows weigh what a process costs
# heapsight besides the events: start-up, threads, the exit scan.
NODE_SCRIPT = ("const a = [];\n"
               "for (let i = 0; i < %d; i++) a.push({i, s: 'k' + (i * 7919 %% 1000003)});\n"
               "a.sort((x, y) => (x.s < y.s ? -1 : x.s > y.s ? 1 : 0));\n"
               "console.log(a.length);\n")
RUBY_SCRIPT = ("h = {}\n%d.times { |i| h[\"key-#{i * 7919 %% 1000003}\"] = i }\n"
               "s = h.sort\nputs s.size\n")
# Many short processes: per iteration bash forks a subshell for echo and
# forks and execs sort and wc, so per-process start-up and exit dominate.
BASH_LOOP = "for i in $(seq %d); do echo $i | sort | wc -l; done > /dev/null"
# Rows heaptrack is not run on unless --heaptrack-all: why.
HEAPTRACK_SKIPPED = {
    # heaptrack_interpret; its RSS was 13 GB after two minutes at load 20.
    "cc1plus": "dies with std::bad_alloc after ~60 s",
    # Since stop 27's tables (docs/performance.md); 117 s of a family run at load 25.
    "recursive": "dies with std::bad_alloc",
}


def family_workloads(args, build, work):
    """(key, label, argv, extra env, events or None) per row."""
    bench = os.path.join(build, "bench", "alloc_bench")
    allocs = int(args.allocs)
    rows = []
    for key in args.rows.split(","):
        if key in FAMILY_ROWS:
            label, extra = FAMILY_ROWS[key]
            rows.append((key, label, [bench, "--allocs", str(allocs)] + extra, {}))
        elif key == "python3":
            n = max(1000, allocs // 2)
            script = os.path.join(work, "dict_sort.py")
            with open(script, "w") as f:
                f.write(PYTHON_SCRIPT % n)
            rows.append((key, "python3: build and sort a {:,}-entry dict, "
                         "PYTHONMALLOC=malloc".format(n),
                         ["/usr/bin/python3", script], {"PYTHONMALLOC": "malloc"}))
        elif key == "perl":
            text = os.path.join(work, "words.txt")
            words = ["w%d" % (i * 7919 % 50021) for i in range(max(10000, allocs // 2))]
            with open(text, "w") as f:
                for i in range(0, len(words), 12):
                    f.write(" ".join(words[i:i + 12]) + "\n")
            rows.append((key, "perl: word count on {:,} bytes of text".format(
                os.path.getsize(text)),
                ["/usr/bin/perl", "-ne", "$c{$_}++ for split; END { print scalar(keys %c), "
                 "\"\\n\" }", text], {}))
        elif key == "git":
            # This repository's history (a real program nobody here wrote).
            repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            # Sized like analyzer_bench's (a second or so plain); small --allocs for a quick check.
            commits = 400 if allocs >= 200000 else 50
            rows.append((key, "git log -p on this repository ({} commits)".format(commits),
                         ["/usr/bin/git", "-C", repo, "--no-pager", "log", "-p", "-n",
                          str(commits)], {}))
        elif key == "sqlite3":
            n = 200000 if allocs >= 200000 else 10000
            sql = os.path.join(work, "family.sql")
            with open(sql, "w") as f:
                f.write(FAMILY_SQL % n)
            rows.append((key, "sqlite3 :memory:, {:,} inserts, index, grouped query".format(n),
                         ["/usr/bin/sqlite3", ":memory:", ".read " + sql], {}))
        elif key in ("node", "ruby"):
            # An interpreter running a script of ours: n objects, sorted.
            n = 300000 if allocs >= 200000 else 20000
            name, template, title = {
                "node": ("array_sort.js", NODE_SCRIPT,
                         "node: build and sort a {:,}-element array of objects"),
                "ruby": ("hash_sort.rb", RUBY_SCRIPT, "ruby: a hash of {:,} string keys, sorted"),
            }[key]
            script = os.path.join(work, name)
            with open(script, "w") as f:
                f.write(template % n)
            rows.append((key, title.format(n), [shutil.which(key) or "/usr/bin/" + key, script], {}))
        elif key == "cc1plus":
            # GCC's compiler proper on a preprocessed file (as trace_size_bench
            # does): the driver, the preprocessor and the assembler stay out.
            cc1plus = subprocess.run(["g++", "-print-prog-name=cc1plus"], capture_output=True,
                                     text=True).stdout.strip()
            if not (os.path.isabs(cc1plus) and os.access(cc1plus, os.X_OK)):
                sys.exit("run_bench: g++ -print-prog-name=cc1plus gave no program")
            ii = os.path.join(work, "compile_workload.ii")
            subprocess.run(["g++", "-std=c++17", "-E", os.path.join(
                os.path.dirname(os.path.abspath(__file__)), "compile_workload.cc"), "-o", ii],
                check=True)
            rows.append((key, "cc1plus -O2 on bench/compile_workload.cc (preprocessed)",
                         [cc1plus, "-fpreprocessed", "-quiet", "-O2", ii, "-o", "/dev/null"], {}))
        elif key == "bash":
            n = 300 if allocs >= 200000 else 30
            rows.append((key, "bash: {} x `echo $i \\| sort \\| wc -l` (3 forks, 2 execs "
                         "each)".format(n),
                         ["/bin/bash", "-c", BASH_LOOP % n], {}))
        else:
            sys.exit("run_bench: unknown row " + key)
    return rows


def measure_env(argv, cwd, env_extra):
    return measure(argv, cwd, env_extra=env_extra)


def heapsight_binary(build):
    """The build's heapsight command (cli/ now; analyzer/ in older trees)."""
    for sub in ("cli", "analyzer"):
        path = os.path.join(build, sub, "heapsight")
        if os.access(path, os.X_OK):
            return path
    return os.path.join(build, "cli", "heapsight")


VARIANT_LABELS = {"heapsight-address": "address frees",
                  "heapsight-converted": "address frees, converted"}


def family(args, repo):
    """The issue 15 table: depth family and interpreters, plain/heapsight/heaptrack."""
    build = os.path.abspath(args.build)
    heapsight = heapsight_binary(build)
    work = tempfile.mkdtemp(prefix="heapsight-family.")
    rows = family_workloads(args, build, work)
    # Extra heapsight columns: tool -> record's options.
    variants = {}
    if args.address:
        variants["heapsight-address"] = ["--pairing=address"]
    if args.convert:
        variants["heapsight-converted"] = ["--pairing=address", "--convert-traces"]
    tools = (["plain", "heapsight"] + list(variants) +
             (["heaptrack"] if shutil.which("heaptrack") else []))
    load_before = os.getloadavg()[0]
    probe_before = call_chain_state(build)
    pick = best_run if args.best else median_run
    runs = {}
    failed = {}  # (key, tool) -> why, for the table
    for i in range(args.runs):
        for key, label, argv, env in rows:
            for tool in tools:
                if (key, tool) in failed:
                    continue  # failed or skipped before: not again
                if tool == "heaptrack" and key in HEAPTRACK_SKIPPED and not args.heaptrack_all:
                    failed[(key, tool)] = "not run ({})".format(HEAPTRACK_SKIPPED[key])
                    continue
                tag = "{}-{}-{}".format(tool, key, i)
                if tool == "plain":
                    cmd = argv
                elif tool == "heapsight" or tool in variants:
                    cmd = [heapsight, "record", "-q", "-o", os.path.join(work, tag + ".%p.hst")]
                    cmd += variants.get(tool, []) + ["--"] + argv
                else:
                    cmd = ["heaptrack", "-o", os.path.join(work, tag)] + argv
                # heaptrack's address space limited where it is skipped by default:
                # on cc1plus heaptrack_interpret grew to 13 GB of this 24 GB machine
                # in two minutes. Not elsewhere: at 8 GB of address space heaptrack
                # failed on the recursive row, which it completes without a limit.
                limit = (args.heaptrack_memory_limit
                         if tool == "heaptrack" and key in HEAPTRACK_SKIPPED else None)
                run = measure(cmd, work, env_extra=env, time_limit=args.time_limit,
                              memory_limit_mb=limit)
                remove_prefix(work, tag)
                if run.rc != 0 or run.timed_out:
                    why = ("killed at the {:.0f} s limit".format(args.time_limit) if run.timed_out
                           else "std::bad_alloc" if "std::bad_alloc" in run.stderr
                           else "exit {}".format(run.rc))
                    failed[(key, tool)] = "failed: {} after {:.0f} s".format(why, run.wall)
                    print("{} {}: {} {}".format(tool, key, failed[(key, tool)],
                                                run.stderr.strip()[-300:]), file=sys.stderr)
                    continue
                runs.setdefault((key, tool), []).append(run)
        print("round {} done".format(i + 1), file=sys.stderr)
    model, cores, mem = machine_info()
    lines = ["Measured {} on {} ({} cores, {} RAM), commit {}; load average {:.1f} before and "
             "{:.1f} after; {} of {} runs, all tools in the same rounds; {}.".format(
                 datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                 model, cores, mem, git_commit(repo), load_before, os.getloadavg()[0],
                 "fastest" if args.best else "median", args.runs,
                 tool_version(["heaptrack", "--version"])),
             "",
             "| workload | plain s | heapsight | heaptrack | overhead ratio (target <= 0.25) "
             "| heapsight overhead CPU ns/event |" +
             "".join(" {} | its ratio | its ns/event |".format(VARIANT_LABELS[v])
                     for v in variants),
             "|---|---|---|---|---|---|" + "---|---|---|" * len(variants)]
    rss_lines = ["", "Peak RSS (ru_maxrss of the " + ("fastest" if args.best else "median") +
                 " run; heapsight's and heaptrack's are the "
                 "largest of the program and their recording processes; " +
                 ("each command ran under GNU time, so a program's figure is its own, from "
                  "a 1 MB floor):" if os.access(TIME, os.X_OK) else
                  "without /usr/bin/time a child's ru_maxrss starts from this script's own "
                  "peak RSS, recorded at its exec, so rows of small programs show that "
                  "floor):"), "",
                 "| workload | plain MB | " + " | ".join(t + " MB (x plain)" for t in tools[1:]) +
                 " |", "|---|---|" + "---|" * len(tools[1:])]
    per_event = {}
    for key, label, _, _ in rows:
        plain = runs.get((key, "plain"))
        if not plain:
            lines.append("| {} | {} | | | | |".format(label, failed.get((key, "plain"), "failed")))
            continue
        p = pick(plain)
        cells = {}
        for tool in tools[1:]:
            rs = runs.get((key, tool))
            cells[tool] = pick(rs).wall / p.wall if rs else None
        hs, ht = cells.get("heapsight"), cells.get("heaptrack")
        ratio = (hs - 1) / (ht - 1) if hs and ht and ht > 1 else None

        def ns_per_event(tool):
            if not runs.get((key, tool)) or not p.events:
                return None
            # Least CPU of the runs: another tenant only ever adds to it.
            best = min(runs[(key, tool)], key=lambda r: r.cpu)
            base = min(plain, key=lambda r: r.cpu)
            return (best.cpu - base.cpu) * 1e9 / p.events

        def ratio_text(r):
            if r is None:
                return "-"
            return "{:.2f} ({})".format(r, "met" if r <= 0.25 else "NOT met")

        ns = "-"
        if ns_per_event("heapsight") is not None:
            per_event[key] = ns_per_event("heapsight")
            ns = "{:.0f}".format(per_event[key])
        def slowdown(tool, value):
            if value:
                return "{:.2f}x".format(value)
            return failed.get((key, tool), "-" if tool == "heaptrack" else "failed")

        row = "| {} | {:.3f} | {} | {} | {} | {} |".format(
            label, p.wall, slowdown("heapsight", hs), slowdown("heaptrack", ht),
            ratio_text(ratio), ns)
        for v in variants:
            ha = cells.get(v)
            aratio = (ha - 1) / (ht - 1) if ha and ht and ht > 1 else None
            ans = ns_per_event(v)
            row += " {} | {} | {} |".format(slowdown(v, ha), ratio_text(aratio),
                                            "{:.0f}".format(ans) if ans is not None else "-")
        lines.append(row)
        mb = [pick(runs[(key, t)]).maxrss_kb / 1024 if runs.get((key, t)) else None
              for t in tools]
        rss_lines.append("| {} | {:.0f} | {} |".format(label, mb[0], " | ".join(
            "{:.0f} ({:.2f}x)".format(m, m / mb[0]) if m else "-" for m in mb[1:])))
    lines.extend(rss_lines)
    lines.append("")
    if "12" in per_event and "200" in per_event:
        r = per_event["200"] / per_event["12"] if per_event["12"] > 0 else float("nan")
        lines.append("- Cost per event, depth 200 / depth 12 (overhead CPU, least of the runs): "
                     "{:.0f} / {:.0f} ns = {:.2f} (target <= 2: {})".format(
                         per_event["200"], per_event["12"], r, "met" if r <= 2 else "NOT met"))
    probe_after = call_chain_state(build)
    if probe_before or probe_after:
        lines.append("- Deep call chains on this host (bench/call_chain_probe, 40 slices of 60 "
                     "nested calls): before the runs {}; after them {}".format(
                         probe_before or "-", probe_after or "-"))
    if any(key == "bash" for key, _, _, _ in rows) and "heaptrack" in tools:
        # Checked by hand (2026-12-07): under heaptrack, bash's children
        # print "failed to lock heaptrack output file /tmp/heaptrack_fifoPID"
        # and run untraced; heapsight writes a trace for each of them.
        lines.append("- bash row: heaptrack traces bash alone (each child's preload fails to "
                     "lock heaptrack's fifo and the child runs untraced), heapsight all 1,503 "
                     "processes: its heaptrack column and ratio compare unlike work")
    if args.callgrind:
        lines.append("")
        lines.extend(callgrind_rows(args, build, work))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write_doc:
        write_doc(args.write_doc, text, marker="family")
    shutil.rmtree(work, ignore_errors=True)


def callgrind_instructions(argv, work, env_extra):
    out = os.path.join(work, "callgrind.out")
    run = measure_env(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv,
                      work, env_extra)
    m = re.search(r"Collected : (\d+)", run.stderr)
    if run.rc != 0 or not m:
        return None, run
    return int(m.group(1)), run


def callgrind_rows(args, build, work):
    """Instructions per event under callgrind, heapsight minus plain, from two run lengths."""
    bench = os.path.join(build, "bench", "alloc_bench")
    preload = os.path.join(build, "preload", "libheapsight.so")
    small, large = 20000, 60000
    out = ["Callgrind instructions per event (allocation or free), heapsight minus plain, "
           "from `alloc_bench --allocs {}` and `--allocs {}` (the difference cancels start-up; "
           "LD_PRELOAD of the build's libheapsight.so):".format(small, large), "",
           "| workload | plain Ir/event | heapsight Ir/event | heapsight overhead Ir/event |",
           "|---|---|---|---|"]
    for key in args.rows.split(","):
        if key not in FAMILY_ROWS:
            continue
        label, extra = FAMILY_ROWS[key]
        per = {}
        for tool in ("plain", "heapsight"):
            env = {}
            if tool == "heapsight":
                env = {"LD_PRELOAD": preload, "HEAPSIGHT_OUTPUT": os.path.join(work, "cg.%p.hst")}
            counts = []
            for n in (small, large):
                ir, run = callgrind_instructions([bench, "--allocs", str(n)] + extra, work, env)
                remove_prefix(work, "cg.")
                if ir is None or run.events is None:
                    counts = None
                    break
                counts.append((ir, run.events))
            if counts:
                (i1, e1), (i2, e2) = counts
                per[tool] = (i2 - i1) / (e2 - e1)
        if "plain" in per and "heapsight" in per:
            out.append("| {} | {:.0f} | {:.0f} | {:.0f} |".format(
                label, per["plain"], per["heapsight"], per["heapsight"] - per["plain"]))
        else:
            out.append("| {} | failed | | |".format(label))
    return out


def analyze(heapsight, kept, work, runs):
    """Times heapsight report vs heaptrack_print on the kept 1-thread traces."""
    out = ["Analyzer speed on the 1-thread traces (median of {} runs; peak RSS from "
           "GNU time, see TIME):".format(runs), "",
           "| analyzer | wall s | events/s | peak RSS MiB |", "|---|---|---|---|"]
    jobs = []
    if kept.get("heapsight"):
        paths, events = kept["heapsight"]
        jobs.append(("heapsight report", [heapsight, "report"] + sorted(paths), events))
        jobs.append(("heapsight leaks", [heapsight, "leaks"] + sorted(paths)[:1], events))
    if kept.get("heaptrack") and shutil.which("heaptrack_print"):
        paths, events = kept["heaptrack"]
        jobs.append(("heaptrack_print", ["heaptrack_print", paths[0]], events))
    for name, argv, events in jobs:
        rs = []
        for _ in range(runs):
            r = measure(argv, work)
            if r.rc != 0:
                out.append("| {} | failed (exit {}): {} | | |".format(
                    name, r.rc, r.stderr.strip()[-200:].replace("\n", " ")))
                break
            rs.append(r)
        if len(rs) != runs:
            continue
        med = median_run(rs)
        # events: the bench's allocations + frees, the same workload for both.
        out.append("| {} | {:.3f} | {} | {:.1f} |".format(
            name, med.wall, "{:,.0f}".format(events / med.wall) if events else "-",
            med.maxrss_kb / 1024))
    return out


def write_doc(path, text, marker="bench"):
    """Replaces the text between <!-- MARKER:begin --> and <!-- MARKER:end -->."""
    begin, end = "<!-- %s:begin -->" % marker, "<!-- %s:end -->" % marker
    with open(path) as f:
        doc = f.read()
    if begin not in doc or end not in doc:
        doc = doc.rstrip("\n") + "\n\n" + begin + "\n" + end + "\n"
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(head + begin + "\n" + text + end + tail)


def publish(lines, doc_path, marker):
    """Prints the table lines and, with a doc path, writes them into its block."""
    text = "\n".join(lines) + "\n"
    print(text)
    if doc_path:
        write_doc(doc_path, text, marker=marker)


if __name__ == "__main__":
    main()
