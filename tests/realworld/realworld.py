#!/usr/bin/env python3
"""tests/realworld/realworld.py: heapsight's leak classes against memcheck's
on real Debian programs.

Each case runs twice in the same environment (env -i with the same few
variables: programs copy their environment into the heap): once under
`heapsight record` (then `heapsight leaks --format=json --include-runtime`: memcheck
without freeres counts the C runtime's own blocks too) and once under
`valgrind --leak-check=full --show-leak-kinds=all --run-libc-freeres=no
--run-cxx-freeres=no` (the fair reference: heapsight scans before any
freeres). The four classes (bytes and blocks) are compared per process; the
table is printed. A difference fails the run unless the case lists it as a
documented exception (docs/leak-classification.md, "Real programs").

Exit status: 0 all equal or explained, 1 a mismatch, 77 (meson's "skipped")
when valgrind or a program is missing.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

CLASSES = ["definitely_lost", "indirectly_lost", "possibly_lost", "still_reachable"]
SHORT = {"definitely_lost": "definite", "indirectly_lost": "indirect",
         "possibly_lost": "possible", "still_reachable": "reachable"}

PY_SCRIPT = (
    "import json, re, collections\n"
    "d = {str(i): [i] * 3 for i in range(2000)}\n"
    "s = json.dumps(d)\n"
    "c = collections.Counter(re.findall(r'[0-9]+', s))\n"
    "print(len(s), len(c))\n"
)

PY_EXIT = (
    "import os\n"
    "keep = [bytearray(1000 + i) for i in range(300)]\n"
    "os._exit(0)\n"
)

# glibc's _dl_find_object (dlopen of a Python extension module) keeps a
# pointer to its 2,304-byte segment array that is exact or rounded
# depending on where the allocator put it: a start pointer (reachable)
# under glibc's malloc, an interior one (possibly lost) under memcheck's.
DL_FIND_OBJECT = {
    "possibly_lost": "glibc's _dl_find_object block (2,304 B): its class depends on its address",
    "still_reachable": "the same block, reachable at glibc malloc's address",
}

# GCC's garbage collector gets its pages from mmap and keeps a calloc'ed
# bookkeeping block (32 KiB, or 2 KiB) per group of pages; how pages group
# depends on the addresses mmap returns, which differ under valgrind.
GGC_PAGES = {
    "still_reachable": "cc1's GC page-group blocks: their number depends on mmap's addresses",
}

# name -> argv (relative files live in the work directory), stdin file,
# and the documented exceptions: class -> reason (the class may differ).
CASES = [
    {"name": "python3", "argv": ["/usr/bin/python3", "-c", PY_SCRIPT],
     "exceptions": DL_FIND_OBJECT},
    # os._exit skips Python's finalization: thousands of objects stay live,
    # their malloc'ed parts pointed to only from pymalloc's mmap'ed arenas.
    {"name": "python3-exit", "argv": ["/usr/bin/python3", "-c", PY_SCRIPT + PY_EXIT],
     "exceptions": DL_FIND_OBJECT},
    {"name": "ls", "argv": ["/usr/bin/ls", "-la", "/usr/share/doc/coreutils"]},
    {"name": "sort", "argv": ["/usr/bin/sort", "-n", "numbers.txt"]},
    {"name": "jq", "argv": ["/usr/bin/jq", "-c", "[.[] | select(.n % 3 == 0) | .s]", "data.json"]},
    {"name": "xz", "argv": ["/usr/bin/xz", "-9", "-c", "-T1", "numbers.txt"], "stdout": True},
    {"name": "perl", "env_copy": "possibly_lost", "argv": ["/usr/bin/perl", "-e",
                              "my %h; $h{$_ % 977} .= $_ for 1..20000; print scalar(keys %h), qq{\\n}"]},
    {"name": "sqlite3", "argv": ["/usr/bin/sqlite3", ":memory:",
                                 "create table t(a, b); "
                                 "insert into t select value, hex(value) from generate_series(1, 2000); "
                                 "select count(*), sum(length(b)) from t;"]},
    {"name": "sed", "argv": ["/usr/bin/sed", "-n", "s/^\\([0-9]\\)\\(.*\\)$/\\2-\\1/p", "numbers.txt"]},
    {"name": "grep", "argv": ["/usr/bin/grep", "-c", "-E", "^(1|7)[0-9]*5$", "numbers.txt"]},
    {"name": "cc1", "exceptions": GGC_PAGES, "argv": ["/usr/lib/gcc/x86_64-linux-gnu/12/cc1", "-quiet", "-O2", "plain.c",
                             "-o", "small.s"]},
    {"name": "gcc", "exceptions": GGC_PAGES, "argv": ["/usr/bin/gcc", "-O2", "-c", "small.c", "-o", "small.o"]},
    {"name": "bash", "env_copy": "still_reachable", "argv": ["/usr/bin/bash", "-c", "a=(); for i in {1..300}; do a+=(x$i); done; echo ${#a[@]}"]},
]

# Fixed hash seeds: perl and python otherwise size their hash tables
# differently from run to run.
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "TZ": "UTC",
       "PERL_HASH_SEED": "0", "PERL_PERTURB_KEYS": "0", "PYTHONHASHSEED": "0"}
# What valgrind's launcher adds to the environment, given to both runs.
VALGRIND_ENV = {"LD_LIBRARY_PATH": "/usr/lib/debug", "GLIBCPP_FORCE_NEW": "1",
                "GLIBCXX_FORCE_NEW": "1"}


def environments(heapsight, work):
    """The two runs' environments, identical but for LD_PRELOAD's value:
    each gets the variables the other tool adds (heapsight record's
    HEAPSIGHT_* with values of the same length, valgrind's launcher's
    variables with the same values). Returns (env for heapsight, env for
    valgrind, len(valgrind's LD_PRELOAD) - len(heapsight's))."""
    base = dict(ENV, HOME=work, PWD=work, TMPDIR=work, **VALGRIND_ENV)
    probe = subprocess.run(["env", "-i"] + ["%s=%s" % kv for kv in base.items()] +
                           [heapsight, "record", "-o", os.path.join(work, "probe"), "--",
                            "/usr/bin/env"], cwd=work, capture_output=True, check=True, timeout=120)
    hs_vars = dict(line.split("=", 1) for line in probe.stdout.decode().splitlines() if "=" in line)
    for f in os.listdir(work):
        if f.startswith("probe"):
            os.remove(os.path.join(work, f))
    vg = subprocess.run(["env", "-i"] + ["%s=%s" % kv for kv in base.items()] +
                        ["valgrind", "-q", "--leak-check=no", "/usr/bin/printenv", "LD_PRELOAD"],
                        cwd=work, capture_output=True, check=True, timeout=120)
    vg_preload = vg.stdout.decode().strip()
    vg_env = dict(base)
    # valgrind appends its LD_LIBRARY_PATH to the one it is given.
    base = dict(base, LD_LIBRARY_PATH=base["LD_LIBRARY_PATH"] + ":" + base["LD_LIBRARY_PATH"])
    for name, value in hs_vars.items():
        if name.startswith("HEAPSIGHT_"):
            vg_env[name] = "x" * len(value)
    return base, vg_env, len(vg_preload) - len(hs_vars.get("LD_PRELOAD", ""))


def write_inputs(work):
    with open(os.path.join(work, "numbers.txt"), "w") as f:
        x = 12345
        for _ in range(20000):
            x = (x * 1103515245 + 12345) % (1 << 31)
            f.write("%d\n" % (x % 100000))
    with open(os.path.join(work, "small.c"), "w") as f:
        f.write("#include <stdio.h>\n#include <stdlib.h>\n"
                "struct node { struct node* next; int v; };\n"
                "static int sum(const struct node* n) { return n ? n->v + sum(n->next) : 0; }\n"
                "int main(void) { struct node* h = 0;\n"
                "  for (int i = 0; i < 10; i++) { struct node* n = malloc(sizeof *n);"
                " n->next = h; n->v = i; h = n; }\n"
                "  printf(\"%d\\n\", sum(h)); return 0; }\n")
    with open(os.path.join(work, "plain.c"), "w") as f:
        f.write("struct node { struct node* next; int v; };\n"
                "int sum(const struct node* n) { return n ? n->v + sum(n->next) : 0; }\n"
                "int twice(int x) { return 2 * x; }\n")
    with open(os.path.join(work, "data.json"), "w") as f:
        json.dump([{"n": i, "s": "item-%d" % i} for i in range(3000)], f)


def run(argv, work, env, timeout):
    return subprocess.run(argv, cwd=work, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=timeout, check=False)


def heapsight_classes(heapsight, scan_classes, case, work, env):
    out = os.path.join(work, "hs-" + case["name"])
    r = run(["env", "-i"] + ["%s=%s" % kv for kv in env.items()] +
            [heapsight, "record", "-o", out, "--"] + case["argv"], work, None, 300)
    traces = sorted(p for p in os.listdir(work)
                    if p == os.path.basename(out) or p.startswith(os.path.basename(out) + "."))
    if not traces:
        raise RuntimeError("heapsight wrote no trace for %s: %s" % (case["name"], r.stderr.decode()))
    paths = [os.path.join(work, t) for t in traces]
    # `heapsight leaks` leaves the C runtime's own blocks out of its classes
    # (runtime_*); memcheck without freeres counts them, so the per-class
    # numbers come from the scan records (scan_classes), and leaks' JSON
    # must agree with them on everything else.
    j = subprocess.run([heapsight, "leaks", "--format=json"] + paths,
                       capture_output=True, check=True, timeout=300)
    doc = json.loads(j.stdout)
    sc = subprocess.run([scan_classes] + paths, capture_output=True, check=True, timeout=300)
    scans = [json.loads(line) for line in sc.stdout.decode().splitlines()]
    procs = []
    for p, s in zip(doc["processes"], scans):
        got = {c: tuple(s["classes"][c]) for c in CLASSES}
        program_blocks = sum(p["classes"][c]["blocks"] for c in CLASSES)
        if program_blocks + p["runtime_blocks"] != sum(b for _, b in got.values()):
            raise RuntimeError("%s: leaks JSON (%d + %d runtime blocks) and the scan (%d) disagree"
                               % (case["name"], program_blocks, p["runtime_blocks"],
                                  sum(b for _, b in got.values())))
        procs.append((os.path.basename(p.get("exe", "?")), got))
    return procs


SUMMARY = re.compile(r"(definitely lost|indirectly lost|possibly lost|still reachable): "
                     r"([\d,]+) bytes in ([\d,]+) blocks")


def memcheck_classes(valgrind, case, work, env):
    logdir = os.path.join(work, "vg-" + case["name"])
    os.makedirs(logdir, exist_ok=True)
    run(["env", "-i"] + ["%s=%s" % kv for kv in env.items()] +
        [valgrind, "--leak-check=full", "--show-leak-kinds=all", "--run-libc-freeres=no",
         "--run-cxx-freeres=no", "--trace-children=yes",
         "--log-file=" + os.path.join(logdir, "log.%p")] + case["argv"], work, None, 600)
    procs = []
    for name in sorted(os.listdir(logdir), key=lambda n: int(n.split(".")[1])):
        text = open(os.path.join(logdir, name), errors="replace").read()
        m = re.search(r"Command: (\S+)", text)
        # heapsight names the executable's real file (symbolic links and
        # PATH resolved): gcc -> x86_64-linux-gnu-gcc-12, as -> ...-as.
        cmd = m.group(1) if m else "?"
        cmd = shutil.which(cmd, path=ENV["PATH"]) or os.path.join(work, cmd)
        exe = os.path.basename(os.path.realpath(cmd))
        got = {c: (0, 0) for c in CLASSES}
        for kind, b, n in SUMMARY.findall(text):
            got[kind.replace(" ", "_")] = (int(b.replace(",", "")), int(n.replace(",", "")))
        procs.append((exe, got))
    return procs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapsight", required=True)
    ap.add_argument("--scan-classes", required=True)
    ap.add_argument("--valgrind", default=shutil.which("valgrind") or "valgrind")
    ap.add_argument("--only", action="append", help="run only these cases")
    args = ap.parse_args()
    if not os.path.exists(args.valgrind) and shutil.which(args.valgrind) is None:
        print("valgrind not installed: skipped")
        return 77
    cases = [c for c in CASES if not args.only or c["name"] in args.only]
    missing = [c["argv"][0] for c in cases if not os.path.exists(c["argv"][0])]
    if missing:
        print("not installed: %s: skipped" % " ".join(missing))
        return 77
    failed = False
    rows = []
    with tempfile.TemporaryDirectory(prefix="heapsight-realworld.") as work:
        write_inputs(work)
        hs_env, vg_env, preload_delta = environments(os.path.abspath(args.heapsight), work)
        for case in cases:
            hs = heapsight_classes(os.path.abspath(args.heapsight), args.scan_classes, case, work,
                                   hs_env)
            vg = memcheck_classes(args.valgrind, case, work, vg_env)
            if len(hs) != len(vg):
                rows.append((case["name"], "-", "processes", "%d" % len(hs), "%d" % len(vg),
                             "MISMATCH"))
                failed = True
                continue
            # Processes matched by executable, then in order of their pids.
            hs = sorted(hs, key=lambda p: p[0])
            vg = sorted(vg, key=lambda p: p[0])
            if [p[0] for p in hs] != [p[0] for p in vg]:
                rows.append((case["name"], "-", "executables", " ".join(p[0] for p in hs),
                             " ".join(p[0] for p in vg), "MISMATCH"))
                failed = True
                continue
            for (exe, h), (_, v) in zip(hs, vg):
                for c in CLASSES:
                    env_copy = case.get("env_copy")
                    if h[c] == v[c]:
                        status = "ok"
                    elif env_copy == c and h[c][1] == v[c][1] and \
                            0 < v[c][0] - h[c][0] <= 2 * preload_delta:
                        status = ("explained: same blocks; the program's copies of "
                                  "LD_PRELOAD's value are longer under valgrind (%d B each)"
                                  % preload_delta)
                    elif c in case.get("exceptions", {}):
                        status = "explained: " + case["exceptions"][c]
                    else:
                        status = "MISMATCH"
                        failed = True
                    rows.append((case["name"], exe, SHORT[c], "%d B / %d" % h[c],
                                 "%d B / %d" % v[c], status))
    print("| case | process | class | heapsight | memcheck | |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| %s |" % " | ".join(r))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
