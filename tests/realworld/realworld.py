#!/usr/bin/env python3
"""tests/realworld/realworld.py: heapsight's leak classes against memcheck's
on real Debian programs.

Each case runs twice in the same environment (env -i with the same few
variables: programs copy their environment into the heap): once under
`heapsight record` (classes from the scan records through scan_classes,
the C runtime's own blocks included as memcheck without freeres counts
them, checked against `heapsight leaks --format=json`) and once under
`valgrind --leak-check=full --show-leak-kinds=all --run-libc-freeres=no
--run-cxx-freeres=no` (the fair reference: heapsight scans before any
freeres). The four classes (bytes and blocks) are compared per process; the
table is printed. A difference fails the run unless a rule of the case
(`known`: Moves, Units, Within, Same, Delta below) documents it, and also
when a documented difference is not the one documented
(docs/leak-classification.md, "What stays different").

`--record-arg=OPTION` (repeatable) passes options to `heapsight record`:
meson's `realworld_address` runs the cases where a block's size and slack
decide a class with `--pairing=address --convert-traces
--convert-wait=all`, so address frees' leak scan (the size asked for, from
the cells, preload/live_cells.h) is held to memcheck too.

Investigating: `--only CASE --keep DIR` keeps the traces (hs-CASE*) and
memcheck's logs (vg-CASE/log.PID); `scan_classes --blocks TRACE` lists
heapsight's blocks with their classes and stacks.

Exit status: 0 all equal or explained, 1 a mismatch, 77 (meson's "skipped")
when valgrind or a program is missing.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

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

# Documented differences (docs/leak-classification.md, "What stays
# different"). Each rule covers some classes of one process (by executable
# base name) and says exactly which difference it allows; a class that
# differs and no rule covers, or a difference a rule does not allow, fails
# the run. check(h, v) gets the per-class (bytes, blocks) of heapsight and
# memcheck and returns None when the difference is the documented one, or
# what is wrong.


def _sub(a, b):
    return (a[0] - b[0], a[1] - b[1])


class Moves:
    """Up to `most` blocks (any size up to `max_bytes` each) are in class
    `frm` under memcheck and in `to` under heapsight: the class of these
    blocks depends on their address."""

    def __init__(self, exe, frm, to, max_bytes, most, why):
        self.exe, self.classes, self.why = exe, (frm, to), why
        self.max_bytes, self.most = max_bytes, most

    def check(self, h, v):
        frm, to = self.classes
        d_from, d_to = _sub(v[frm], h[frm]), _sub(h[to], v[to])
        if d_from != d_to:
            return "%s and %s do not differ by the same blocks" % (frm, to)
        n, b = d_from[1], d_from[0]
        if not (0 <= n <= self.most and 0 <= b <= n * self.max_bytes):
            return "%d blocks / %d B moved, documented: at most %d of at most %d B" % (
                d_from[1], d_from[0], self.most, self.max_bytes)
        return None


class Units:
    """Class `cls` differs by a small number (at most `most` of each) of
    blocks of the given sizes: blocks the program makes a number of that
    depends on addresses."""

    def __init__(self, exe, cls, sizes, most, why):
        self.exe, self.classes, self.why = exe, (cls,), why
        self.sizes, self.most = sizes, most

    def check(self, h, v):
        d = _sub(v[self.classes[0]], h[self.classes[0]])
        options = {(0, 0)}
        for size in self.sizes:
            options = {(b + k * size, n + k) for b, n in options
                       for k in range(-self.most, self.most + 1)}
        if d in options:
            return None
        return "differs by %d B / %d blocks, not by blocks of %s B" % (
            d[0], d[1], " or ".join(map(str, self.sizes)))


class Same:
    """The same allocations (all four classes together, within `blocks` and
    `bytes`), classified differently for a documented reason."""

    def __init__(self, exe, blocks, nbytes, why):
        self.exe, self.classes, self.why = exe, tuple(CLASSES), why
        self.blocks, self.bytes = blocks, nbytes

    def check(self, h, v):
        hb = sum(h[c][1] for c in CLASSES)
        vb = sum(v[c][1] for c in CLASSES)
        hy = sum(h[c][0] for c in CLASSES)
        vy = sum(v[c][0] for c in CLASSES)
        if abs(hb - vb) <= self.blocks and abs(hy - vy) <= self.bytes:
            return None
        return "totals differ by %d blocks / %d B (documented: at most %d / %d)" % (
            vb - hb, vy - hy, self.blocks, self.bytes)


class Within:
    """Class `cls` differs by at most `blocks` blocks and `nbytes` bytes
    either way."""

    def __init__(self, exe, cls, blocks, nbytes, why):
        self.exe, self.classes, self.why = exe, (cls,), why
        self.blocks, self.bytes = blocks, nbytes

    def check(self, h, v):
        d = _sub(v[self.classes[0]], h[self.classes[0]])
        if abs(d[1]) <= self.blocks and abs(d[0]) <= self.bytes:
            return None
        return "differs by %d B / %d blocks (documented: at most %d B / %d)" % (
            d[0], d[1], self.bytes, self.blocks)


class Delta:
    """A known difference given exactly, class -> (bytes, blocks) memcheck
    has more than heapsight (or a list of the exact alternatives): fails if
    it changes, also when it is gone (the table and this rule are then out
    of date)."""

    def __init__(self, exe, deltas, why):
        self.exe, self.classes, self.why = exe, tuple(deltas), why
        self.deltas = deltas

    def check(self, h, v):
        for c, want in self.deltas.items():
            d = _sub(v[c], h[c])
            options = want if isinstance(want, list) else [want]
            if d not in options:
                return "%s: memcheck - heapsight = %d B / %d, documented %s" % (
                    SHORT[c], d[0], d[1], " or ".join("%d B / %d" % o for o in options))
        return None


# glibc's _dl_find_object (dlopen of a shared object) keeps a pointer to its
# 2,304-byte segment array that is exact or rounded depending on where the
# allocator put the array: a start pointer (reachable) or an interior one
# (possibly lost), at glibc malloc's address or memcheck's.
def dl_find_object(exe):
    why = "glibc's _dl_find_object array (2,304 B): its class depends on its address"
    return [Units(exe, "possibly_lost", (2304,), 2, why),
            Units(exe, "still_reachable", (2304,), 2, why)]


# GCC's garbage collector finds its pages through a two-level table with a
# calloc'ed 32 KiB second level per 16 MiB of address space its pages fall
# in (and a 2,064-byte chain entry per 4 GiB): their number depends on the
# addresses mmap returns.
def ggc_tables(exe):
    return Units(exe, "still_reachable", (32768, 2064), 2,
                 "GCC's GC page tables: one 32 KiB block per 16 MiB of addresses its pages use")


# libiberty's xmalloc_set_program_name keeps first_break = sbrk(0) for its
# out-of-memory message: natively a block can start right there (the heap
# grew past it), under valgrind the break is valgrind's.
FIRST_BREAK = Moves("x86_64-linux-gnu-ld.bfd", "definitely_lost", "still_reachable", 64, 1,
                    "libiberty's first_break = sbrk(0) points to the start of a block natively")

# Tcl's allocator carves its objects out of 16 KiB blocks whose unused
# part keeps what the chunk held before. Natively glibc reuses freed chunks
# at once, and one such block can hold a stale copy of a 38,400-byte
# literal table's start address (found with gdb at 16,232 bytes into a
# 16,384-byte block); memcheck hands out fresh memory, so it sees only the
# table's interior pointers. Whether a copy lands there depends on the
# heap's layout: with HEAPSIGHT_FLUSH_MS (record --convert-traces) and
# meson's TMPDIR the preload's start-up allocations move it into place.
TCL_STALE = Moves("tclsh8.6", "possibly_lost", "still_reachable", 38400, 1,
                  "a stale copy of a literal table's address in the unused part of one of "
                  "Tcl's 16 KiB allocator blocks (glibc reuses the chunk, memcheck gives "
                  "fresh memory)")

OWN_TLS = "the preload's own TLS module: each thread's DTV is 16 B longer"
GLIB_UNDER_VALGRIND = "GLib allocates two constructor blocks at 64 B under valgrind, 32 B natively"

NODE_SCRIPT = (
    "const m = new Map();"
    "for (let i = 0; i < 200; i++) m.set('k' + i, {i, s: String(i).repeat(3)});"
    "console.log(m.size, JSON.stringify([...m.values()]).length);"
)

RUBY_SCRIPT = (
    "h = {}; 300.times { |i| h[\"k#{i}\"] = [i, i.to_s * 3] }; "
    "puts h.size, h.values.map(&:last).join.size"
)

LUA_SCRIPT = (
    "local t = {} for i = 1, 500 do t[i] = string.rep(tostring(i), 3) end "
    "local u = {} for k, v in ipairs(t) do u[v] = k end print(#t, #table.concat(t))"
)

TCL_SCRIPT = (
    "set d [dict create]\n"
    "for {set i 0} {$i < 500} {incr i} { dict set d k$i [list $i [expr {$i * $i}]] }\n"
    "puts [dict size $d]\n"
)

MAKEFILE = (
    "# tests/realworld: make parses, expands functions and walks the graph;\n"
    "# no recipe runs (no child process).\n"
    "N := 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20\n"
    "OBJS := $(foreach n,$(N),obj$(n).o)\n"
    "SRCS := $(patsubst %.o,%.c,$(OBJS))\n"
    "$(info $(words $(OBJS)) objects, $(words $(sort $(SRCS) $(SRCS))) sources)\n"
    "all: $(OBJS)\n"
    "$(OBJS): ;\n"
    ".PHONY: all $(OBJS)\n"
)

# A fontconfig configuration without font directories (the dot case).
NO_FONTS_CONF = ('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n'
                 "<fontconfig></fontconfig>\n")

DOT_GRAPH = (
    "digraph g {\n  rankdir=LR; node [shape=box];\n"
    + "".join("  n%d -> n%d [label=\"e%d\"];\n" % (i, (i * 7 + 3) % 20, i) for i in range(20))
    + "}\n"
)

# name, argv (relative files live in the work directory), env (added to
# both runs' environments), env_copy (the class that may hold the program's
# copies of LD_PRELOAD's value) and known (the rules above that document a
# difference).
CASES = [
    {"name": "python3", "argv": ["/usr/bin/python3", "-c", PY_SCRIPT],
     "known": dl_find_object("python3.11")},
    # os._exit skips Python's finalization: thousands of objects stay live,
    # their malloc'ed parts pointed to only from pymalloc's mmap'ed arenas.
    {"name": "python3-exit", "argv": ["/usr/bin/python3", "-c", PY_SCRIPT + PY_EXIT],
     "known": dl_find_object("python3.11")},
    {"name": "ls", "argv": ["/usr/bin/ls", "-la", "/usr/share/doc/coreutils"]},
    {"name": "sort", "argv": ["/usr/bin/sort", "-n", "numbers.txt"]},
    {"name": "jq", "argv": ["/usr/bin/jq", "-c", "[.[] | select(.n % 3 == 0) | .s]", "data.json"]},
    {"name": "xz", "argv": ["/usr/bin/xz", "-9", "-c", "-T1", "numbers.txt"]},
    {"name": "perl", "env_copy": "possibly_lost", "argv": ["/usr/bin/perl", "-e",
                              "my %h; $h{$_ % 977} .= $_ for 1..20000; print scalar(keys %h), qq{\\n}"]},
    {"name": "sqlite3", "argv": ["/usr/bin/sqlite3", ":memory:",
                                 "create table t(a, b); "
                                 "insert into t select value, hex(value) from generate_series(1, 2000); "
                                 "select count(*), sum(length(b)) from t;"]},
    {"name": "sed", "argv": ["/usr/bin/sed", "-n", "s/^\\([0-9]\\)\\(.*\\)$/\\2-\\1/p", "numbers.txt"]},
    {"name": "grep", "argv": ["/usr/bin/grep", "-c", "-E", "^(1|7)[0-9]*5$", "numbers.txt"]},
    {"name": "cc1", "known": [ggc_tables("cc1")], "argv": ["/usr/lib/gcc/x86_64-linux-gnu/12/cc1", "-quiet", "-O2", "plain.c",
                             "-o", "small.s"]},
    {"name": "gcc", "known": [ggc_tables("cc1")], "argv": ["/usr/bin/gcc", "-O2", "-c", "small.c", "-o", "small.o"]},
    {"name": "bash", "env_copy": "still_reachable", "argv": ["/usr/bin/bash", "-c", "a=(); for i in {1..300}; do a+=(x$i); done; echo ${#a[@]}"]},
    # The link: the driver, collect2 and ld.
    {"name": "gcc-link", "argv": ["/usr/bin/gcc", "link.o", "-o", "linked"],
     "known": [FIRST_BREAK] + dl_find_object("x86_64-linux-gnu-ld.bfd")},
    {"name": "node", "argv": ["/usr/bin/node", "-e", NODE_SCRIPT], "known": [
        # The preload's own TLS module (the one it may add, issue 14): each
        # of node's 5 worker threads gets a DTV 16 bytes longer, and those
        # DTVs are possibly lost in both tools.
        Delta("node", {"possibly_lost": (-80, 0)}, OWN_TLS)]},
    # Ruby 3.1 frees half its heap pages at exit (rb_objspace_free's loop
    # bound shrinks as it frees), the lower-addressed half: which objects
    # stay depends on the direction mmap places pages in.
    {"name": "ruby", "argv": ["/usr/bin/ruby", "-e", RUBY_SCRIPT], "known": [
        # heapsight alone: 21,468-21,474 blocks in six runs, 21,046 in one
        # (the full suite, 2026-12-06); memcheck 21,448 in that run.
        Same("ruby3.1", 600, 65536, "Ruby 3.1 unmaps the lower-addressed half of its heap "
             "pages at exit: which half holds which objects depends on mmap's direction")]},
    # Process.exit! skips that: every page stays.
    {"name": "ruby-exit", "argv": ["/usr/bin/ruby", "-e", RUBY_SCRIPT + "; Process.exit!(0)"],
     "known": [Within("ruby3.1", "still_reachable", 400, 65536,
                      "Ruby's live objects vary from run to run (conservative GC, heap growth)")]
     + dl_find_object("ruby3.1")},
    {"name": "convert", "env": {"G_SLICE": "always-malloc"},
     "argv": ["/usr/bin/convert", "-size", "48x48", "gradient:red-blue",
              "-blur", "0x1", "-rotate", "30", "out.png"], "known": [
         # Two of GLib's constructor blocks (g_private/g_thread set-up,
         # libglib+0x4032a and +0x4033f) are 32 B natively and 64 B under
         # valgrind: the same 24 blocks, 64 B more under memcheck. Plus or
         # minus the _dl_find_object arrays (up to two, 2,304 B each: one
         # per dlopen'ed coder's range) that are possibly lost in one run
         # and reachable in the other (dl_find_object below; CI saw both
         # possibly lost under heapsight, 2026-12-06).
         Delta("convert-im6.q16",
               {"still_reachable": [(64 + k * 2304, k) for k in (0, 1, -1, 2, -2)]},
               GLIB_UNDER_VALGRIND)]
     + dl_find_object("convert-im6.q16")[:1]},
    # GLib's g_slice carves small objects out of slabs, but switches to
    # malloc when it detects valgrind: G_SLICE=always-malloc gives both
    # runs the same allocations (docs/leak-classification.md, g_slice).
    # GObject instances with private data are allocated differently under
    # valgrind (an extra pointer to the block's start, and client requests
    # that make the instance a block of its own); natively the instance
    # pointer is inside its block.
    # Pango sorts fonts on a thread of its own and, when the sort is not
    # done yet, matches the first font itself (FcFontMatch): each time the
    # thread loses that race, ~57 more blocks. That varied the totals by up
    # to 269 blocks from run to run (CI, 2026-12-06), in either tool. With
    # no fonts configured (fonts.conf below) neither path allocates, and
    # the totals vary by at most 2 blocks (the runtime's thread blocks).
    {"name": "dot", "env": {"G_SLICE": "always-malloc",
                            "FONTCONFIG_FILE": "{work}/no-fonts.conf"},
     "argv": ["/usr/bin/dot", "-Tsvg", "graph.dot", "-o", "graph.svg"], "known": [
         # Totals within 32 blocks / 4 KiB: 5-7 blocks / 176-864 B apart
         # in three runs (memcheck's side varies by ~340 B: its thread
         # blocks).
         Same("libgvc6-config-update", 32, 4096,
              "GObject allocates its instances differently under valgrind")]},
    # Read-only commands on a repository made before the runs (write_inputs):
    # both runs see the same repository.
    {"name": "git", "argv": ["/usr/bin/git", "-C", "repo", "log", "-p", "--stat"]},
    {"name": "make", "env_copy": "still_reachable", "argv": ["/usr/bin/make", "-f", "rw.mk", "-r"]},
    {"name": "tclsh", "known": [TCL_STALE], "argv": ["/usr/bin/tclsh8.6", "script.tcl"]},
    {"name": "lua5.4", "argv": ["/usr/bin/lua5.4", "-e", LUA_SCRIPT]},
]

# Fixed hash seeds: perl and python otherwise size their hash tables
# differently from run to run.
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C", "LC_ALL": "C", "TZ": "UTC",
       "PERL_HASH_SEED": "0", "PERL_PERTURB_KEYS": "0", "PYTHONHASHSEED": "0"}
# What valgrind's launcher adds to the environment, given to both runs.
VALGRIND_ENV = {"LD_LIBRARY_PATH": "/usr/lib/debug", "GLIBCPP_FORCE_NEW": "1",
                "GLIBCXX_FORCE_NEW": "1"}


def environments(heapsight, record_args, work, outdir):
    """The two runs' environments, identical but for LD_PRELOAD's value:
    each gets the variables the other tool adds (heapsight record's
    HEAPSIGHT_* with values of the same length, valgrind's launcher's
    variables with the same values). Returns (env for heapsight, env for
    valgrind, len(valgrind's LD_PRELOAD) - len(heapsight's))."""
    base = dict(ENV, HOME=work, PWD=work, TMPDIR=work, **VALGRIND_ENV)
    probe = subprocess.run(["env", "-i"] + ["%s=%s" % kv for kv in base.items()] +
                           [heapsight, "record"] + record_args +
                           ["-o", os.path.join(outdir, "probe"), "--",
                            "/usr/bin/env"], cwd=work, capture_output=True, check=True, timeout=120)
    hs_vars = dict(line.split("=", 1) for line in probe.stdout.decode().splitlines() if "=" in line)
    for f in os.listdir(outdir):
        if f.startswith("probe"):
            os.remove(os.path.join(outdir, f))
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
    for name, text in (("script.tcl", TCL_SCRIPT), ("rw.mk", MAKEFILE), ("graph.dot", DOT_GRAPH),
                       ("no-fonts.conf", NO_FONTS_CONF)):
        with open(os.path.join(work, name), "w") as f:
            f.write(text)
    subprocess.run(["/usr/bin/gcc", "-O2", "-c", "small.c", "-o", "link.o"], cwd=work, check=True)
    # A repository of three commits, made once: git runs only read it.
    repo = os.path.join(work, "repo")
    genv = dict(ENV, HOME=work, GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="rw",
                GIT_AUTHOR_EMAIL="rw@example.org", GIT_COMMITTER_NAME="rw",
                GIT_COMMITTER_EMAIL="rw@example.org", GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
                GIT_COMMITTER_DATE="2026-01-01T00:00:00Z")
    subprocess.run(["/usr/bin/git", "init", "-q", "-b", "main", repo], env=genv, check=True)
    for i in range(3):
        with open(os.path.join(repo, "f%d.txt" % i), "w") as f:
            f.write("".join("line %d of file %d\n" % (j, i) for j in range(40 + 10 * i)))
        subprocess.run(["/usr/bin/git", "add", "."], cwd=repo, env=genv, check=True)
        subprocess.run(["/usr/bin/git", "commit", "-q", "-m", "commit %d" % i], cwd=repo,
                       env=genv, check=True)


def run(argv, work, env, timeout):
    return subprocess.run(argv, cwd=work, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=timeout, check=False)


def case_env(case, work):
    """The case's own variables, "{work}" replaced by the work directory."""
    return {k: v.replace("{work}", work) for k, v in case.get("env", {}).items()}


def heapsight_classes(heapsight, record_args, scan_classes, case, work, outdir, env):
    env = dict(env, **case_env(case, work))
    out = os.path.join(outdir, "hs-" + case["name"])
    r = run(["env", "-i"] + ["%s=%s" % kv for kv in env.items()] +
            [heapsight, "record"] + record_args + ["-o", out, "--"] + case["argv"], work, None,
            300)
    traces = sorted(p for p in os.listdir(outdir)
                    if p == os.path.basename(out) or p.startswith(os.path.basename(out) + "."))
    if not traces:
        raise RuntimeError("heapsight wrote no trace for %s: %s" % (case["name"], r.stderr.decode()))
    paths = [os.path.join(outdir, t) for t in traces]
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


def memcheck_classes(valgrind, case, work, outdir, env):
    env = dict(env, **case_env(case, work))
    logdir = os.path.join(outdir, "vg-" + case["name"])
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
    ap.add_argument("--keep", help="work in this (new) directory and keep the traces and logs")
    ap.add_argument("--record-arg", action="append", default=[],
                    help="an option for `heapsight record` (repeat for more), e.g. "
                         "--record-arg=--pairing=address")
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
    times = []
    with contextlib.ExitStack() as stack:
        if args.keep:
            os.makedirs(args.keep)
            top = os.path.abspath(args.keep)
        else:
            top = stack.enter_context(tempfile.TemporaryDirectory(prefix="heapsight-realworld."))
        # The programs run in `work`; traces and logs go to `outdir`, so
        # both runs of a case see the same directory: python lists its
        # working directory (sys.path[0]) into a set, and two more names
        # there (the heapsight run's trace and cache) made memcheck's run
        # of python3-exit resize that set, one 2,048-byte block more.
        work, outdir = os.path.join(top, "run"), os.path.join(top, "out")
        os.makedirs(work)
        os.makedirs(outdir)
        write_inputs(work)
        hs_env, vg_env, preload_delta = environments(os.path.abspath(args.heapsight),
                                                     args.record_arg, work,
                                                     outdir)
        for case in cases:
            t0 = time.monotonic()
            hs = heapsight_classes(os.path.abspath(args.heapsight), args.record_arg,
                                   args.scan_classes, case, work,
                                   outdir, hs_env)
            t1 = time.monotonic()
            vg = memcheck_classes(args.valgrind, case, work, outdir, vg_env)
            times.append((case["name"], t1 - t0, time.monotonic() - t1))
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
                status = {c: "ok" for c in CLASSES if h[c] == v[c]}
                env_copy = case.get("env_copy")
                if env_copy and env_copy not in status and h[env_copy][1] == v[env_copy][1] \
                        and 0 < v[env_copy][0] - h[env_copy][0] <= 2 * preload_delta:
                    status[env_copy] = ("explained: same blocks; the program's copies of "
                                        "LD_PRELOAD's value are longer under valgrind (%d B each)"
                                        % preload_delta)
                # A class that differs is explained when a rule covering it
                # holds; a Delta rule that does not hold always fails (the
                # documented difference changed).
                explained, reasons = {}, {}
                for rule in case.get("known", []):
                    if rule.exe != exe:
                        continue
                    delta = isinstance(rule, Delta)
                    if not delta and all(c in status for c in rule.classes):
                        continue
                    wrong = rule.check(h, v)
                    for c in rule.classes:
                        if wrong and delta:
                            status[c] = "MISMATCH: documented difference changed: " + wrong
                        elif wrong:
                            reasons.setdefault(c, []).append(wrong)
                        elif c not in status:
                            explained.setdefault(c, "explained: " + rule.why)
                for c in CLASSES:
                    if c not in status:
                        status[c] = explained.get(c) or "MISMATCH" + "".join(
                            ": " + r for r in reasons.get(c, []))
                for c in CLASSES:
                    st = status.get(c, "MISMATCH")
                    failed = failed or st.startswith("MISMATCH")
                    rows.append((case["name"], exe, SHORT[c], "%d B / %d" % h[c],
                                 "%d B / %d" % v[c], st))
    print("| case | process | class | heapsight | memcheck | |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| %s |" % " | ".join(r))
    # Wall times, for keeping the suite within CI's time (not asserted).
    print("\nseconds (heapsight, memcheck): " + ", ".join(
        "%s %.1f %.1f" % t for t in times))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
