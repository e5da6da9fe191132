#!/usr/bin/env python3
# tests/cli/totals_test.py: every command prints the same totals for the same
# trace (issue 13, "One definition per number"; docs/glossary.md).
#
# Records real programs under the real preload with `heapsight record`: every
# lesson program (examples/), a sampled trace (sample-bytes set), and a
# fork/exec family (sh -c running a forking program and a lesson). Then, for
# each trace, runs report, leaks (JSON), pprof (end and --at peak; the
# profile is decoded here), collapse and flamegraph (folded counts summed,
# the SVG's total), html (its summary table), growth (JSON) and diff (JSON)
# and checks that allocated bytes/count, peak bytes/blocks, not freed at
# exit, temporaries and the runtime's numbers are equal everywhere, exactly,
# estimates of sampled traces included. The family's totals are checked
# against the sums of its processes, and record's summary against report.
#
# Usage: totals_test.py HEAPSIGHT EXAMPLES_DIR FORK_PROGRAM
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile

FAILURES = []


def check(what, got, want):
    if got != want:
        FAILURES.append(f"{what}: {got} != {want}")


def run(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode not in (0, 2) and "record" not in args[1:2]:
        raise RuntimeError(f"{args} exited {r.returncode}: {r.stderr}")
    return r


def number(text):
    return int(text.replace(",", ""))


def strip_parens(line):
    # "1,234 bytes (1.2 KiB) (estimate, +/- 5 bytes (0 KiB)) in 3 allocations"
    # -> "1,234 bytes in 3 allocations"
    while True:
        out = re.sub(r" ?\([^()]*\)", "", line)
        if out == line:
            return out
        line = out


# ---- report ---------------------------------------------------------------

def parse_report(text):
    """Per-process totals (list, in order) and the family total (or None)."""
    procs, family, cur = [], None, None
    classes = None  # the process whose "leaks by reachability" lines follow
    for raw in text.splitlines():
        line = strip_parens(raw)
        m = re.match(r"(?:pid (\d+) )?leaks by reachability", raw)
        if m:
            pid = int(m[1]) if m[1] else procs[0]["pid"]
            classes = next(p for p in procs if p["pid"] == pid).setdefault("classes", {})
            continue
        m = re.match(r"\s+(definitely lost|indirectly lost|possibly lost|still reachable): "
                     r"([\d,]+) bytes in ([\d,]+) blocks$", raw)
        if m and classes is not None:
            classes[m[1]] = (number(m[2]), number(m[3]))
            continue
        if raw.startswith("== process "):
            cur = {"pid": int(raw.split()[2])}
            procs.append(cur)
            continue
        if raw.startswith("== total"):
            cur = family = {}
            continue
        if cur is None:
            continue
        m = re.match(r"bytes allocated: ([\d,]+) bytes in ([\d,]+) allocations?$", line)
        if m:
            cur["bytes"], cur["allocs"] = number(m[1]), number(m[2])
        m = re.match(r"bytes allocated: ([\d,]+) bytes$", line)
        if m:
            cur["bytes"] = number(m[1])
        m = re.match(r"allocations: ([\d,]+), blocks freed: ([\d,]+)$", line)
        if m:
            cur["allocs"], cur["frees"] = number(m[1]), number(m[2])
        m = re.match(r"\s+blocks freed\s+([\d,]+)$", line)
        if m:
            cur["frees"] = number(m[1])
        m = re.match(r"peak heap: ([\d,]+) bytes in ([\d,]+) blocks? at", line)
        if m:
            cur["peak"], cur["peak_blocks"] = number(m[1]), number(m[2])
        m = re.match(r"largest peak heap of one process: ([\d,]+) bytes", line)
        if m:
            cur["peak"] = number(m[1])
        m = re.match(r"not freed at exit: ([\d,]+) bytes in ([\d,]+) blocks?$", line)
        if m:
            cur["not_freed"], cur["not_freed_blocks"] = number(m[1]), number(m[2])
            cur["exec"] = False
        m = re.match(r"ended in exec: ([\d,]+) bytes in ([\d,]+) blocks? discarded", line)
        if m:
            cur["discarded"], cur["discarded_blocks"] = number(m[1]), number(m[2])
            cur["not_freed"], cur["not_freed_blocks"], cur["exec"] = 0, 0, True
        m = re.match(r"temporary allocations: ([\d,]+)", line)
        if m:
            cur["temporary"] = number(m[1])
        m = re.match(r"C/C\+\+ runtime: ([\d,]+) allocations?, ([\d,]+) bytes; ([\d,]+) bytes "
                     r"in ([\d,]+) blocks? held at exit", line)
        if m:
            cur["runtime"] = tuple(number(m[i]) for i in range(1, 5))
        m = re.match(r"inherited from the parent at fork: ([\d,]+) bytes", line)
        if m:
            cur["inherited"] = number(m[1])
        if raw.startswith("sampled trace:"):
            cur["estimated"] = True
    return procs, family


# ---- pprof ----------------------------------------------------------------

def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def fields(buf):
    """(field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(buf, i)
        elif wire == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield num, wire, v


def ints(wire, v):
    if wire == 0:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = varint(v, i)
        out.append(x)
    return out


def pprof_sums(path):
    """{sample type name: sum over samples} of a gzipped profile.proto."""
    data = gzip.open(path).read()
    strings, types, samples = [], [], []
    for num, wire, v in fields(data):
        if num == 6:
            strings.append(v.decode())
        elif num == 1:
            types.append(dict((n, x) for n, w, x in fields(v)).get(1, 0))
        elif num == 2:
            values = []
            for n, w, x in fields(v):
                if n == 2:
                    values += ints(w, x)
            samples.append(values)
    names = [strings[t] for t in types]
    sums = dict.fromkeys(names, 0)
    for values in samples:
        for name, x in zip(names, values):
            sums[name] += x if x < 2**63 else x - 2**64
    return sums


# ---- the other commands ---------------------------------------------------

def folded_sum(text):
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.strip())


def html_summary(text):
    rows = {}
    for label, cell in re.findall(r"<tr><th(?: title=\"[^\"]*\")?>([^<]+)</th><td[^>]*>(.*?)</td></tr>", text):
        rows.setdefault(label, strip_parens(re.sub(r"<[^>]+>", "", cell)))
    return rows


def check_trace(hs, trace, r, work):
    name = os.path.basename(trace)
    estimated = r.get("estimated", False)
    if not estimated:
        check(f"{name}: the peak is at most what was allocated (and inherited)",
              r["peak"] <= r["bytes"] + r.get("inherited", 0), True)

    def section(what, fn):
        # One command's checks; a missing field or a crash is a failure of
        # that command, and the other commands are still checked.
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            FAILURES.append(f"{name}: {what}: {type(e).__name__}: {e}")

    not_freed = r.get("discarded", 0) if r["exec"] else r["not_freed"]
    not_freed_blocks = r.get("discarded_blocks", 0) if r["exec"] else r["not_freed_blocks"]
    section("pprof", lambda: check_pprof(hs, trace, r, work, name, not_freed, not_freed_blocks))
    section("collapse/flamegraph", lambda: check_folded(hs, trace, r, work, name, not_freed))
    section("leaks", lambda: check_leaks(hs, trace, r, name, estimated))
    section("html", lambda: check_html(hs, trace, r, work, name))
    section("growth/diff", lambda: check_growth_diff(hs, trace, r, name, estimated, not_freed,
                                                     not_freed_blocks))


def check_pprof(hs, trace, r, work, name, not_freed, not_freed_blocks):
    out = os.path.join(work, name + ".pb.gz")
    run([hs, "pprof", trace, "-o", out])
    s = pprof_sums(out)
    check(f"{name}: pprof alloc_space", s["alloc_space"], r["bytes"])
    check(f"{name}: pprof alloc_objects", s["alloc_objects"], r["allocs"])
    check(f"{name}: pprof inuse_space at the end", s["inuse_space"], not_freed)
    check(f"{name}: pprof inuse_objects at the end", s["inuse_objects"], not_freed_blocks)
    run([hs, "pprof", trace, "--at", "peak", "-o", out])
    s = pprof_sums(out)
    check(f"{name}: pprof --at peak inuse_space", s["inuse_space"], r["peak"])
    check(f"{name}: pprof --at peak inuse_objects", s["inuse_objects"], r["peak_blocks"])



def check_folded(hs, trace, r, work, name, not_freed):
    for metric, want in (("alloc_bytes", r["bytes"]), ("alloc_count", r["allocs"]),
                         ("peak_bytes", r["peak"]), ("not_freed_bytes", not_freed)):
        folded = run([hs, "collapse", trace, "--metric", metric, "-o", "-"]).stdout
        check(f"{name}: collapse --metric {metric}", folded_sum(folded), want)
        svg_path = os.path.join(work, name + ".svg")
        run([hs, "flamegraph", trace, "--metric", metric, "-o", svg_path])
        m = re.search(r"total ([\d,]+) ", open(svg_path).read())
        check(f"{name}: flamegraph --metric {metric} total", m and number(m[1]), want)



def check_leaks(hs, trace, r, name, estimated):
    leaks = json.loads(run([hs, "leaks", "--format", "json", trace]).stdout)
    p = leaks["processes"][0]
    if "classes" in r:  # report's "leaks by reachability" section
        names = {"definitely lost": "definitely_lost", "indirectly lost": "indirectly_lost",
                 "possibly lost": "possibly_lost", "still reachable": "still_reachable"}
        for label, key in names.items():
            c = p["classes"][key]
            check(f"{name}: report/leaks '{label}'", r["classes"].get(label),
                  (c["bytes"], c["blocks"]))
    check(f"{name}: leaks not_freed_bytes", p["not_freed_bytes"], r["not_freed"])
    check(f"{name}: leaks not_freed_blocks", p["not_freed_blocks"], r["not_freed_blocks"])
    parts = sum(c["bytes"] for c in p["classes"].values()) + p["suppressed_bytes"]
    check(f"{name}: leaks classes + suppressed = not freed", parts, r["not_freed"])
    if r["exec"]:
        check(f"{name}: leaks discarded_by_exec_bytes", p.get("discarded_by_exec_bytes", 0),
              r["discarded"])
    rt = r.get("runtime", (0, 0, 0, 0))
    if not r["exec"]:
        check(f"{name}: leaks runtime_bytes", p["runtime_bytes"], rt[2])
    check(f"{name}: leaks estimated", p.get("estimated", False), estimated)



def check_html(hs, trace, r, work, name):
    html_path = os.path.join(work, name + ".html")
    run([hs, "html", trace, "-o", html_path])
    rows = html_summary(open(html_path).read())
    want_rows = {"bytes allocated": r["bytes"], "allocations": r["allocs"],
                 "peak heap": r["peak"]}
    if r["exec"]:
        want_rows["heap discarded by exec"] = r["discarded"]
        check(f"{name}: html has no 'not freed at exit' for an exec", "not freed at exit" in rows,
              False)
    else:
        want_rows["not freed at exit"] = r["not_freed"]
    if "temporary" in r:
        want_rows["temporary allocations"] = r["temporary"]
    for label, want in want_rows.items():
        cell = rows.get(label, "")
        m = re.match(r"([\d,]+)", cell)
        check(f"{name}: html '{label}'", m and number(m[1]), want)



def check_growth_diff(hs, trace, r, name, estimated, not_freed, not_freed_blocks):
    g = json.loads(run([hs, "growth", "--format", "json", trace]).stdout)["processes"][0]["totals"]
    check(f"{name}: growth totals", (g["bytes_allocated"], g["allocations"], g["peak_bytes"],
                                     g["not_freed_bytes"], g["estimated"]),
          (r["bytes"], r["allocs"], r["peak"], not_freed, estimated))
    d = json.loads(run([hs, "diff", "--format", "json", trace, trace]).stdout)["totals"]
    check(f"{name}: diff totals", (d["base"]["alloc_count"], d["base"]["alloc_bytes"],
                                   d["base"]["peak_bytes"], d["base"]["not_freed_bytes"],
                                   d["base"]["not_freed_count"], d["estimated"]),
          (r["allocs"], r["bytes"], r["peak"], not_freed, not_freed_blocks, estimated))


def record(hs, work, tag, argv, options=()):
    out = os.path.join(work, tag)
    os.mkdir(out)
    args = [hs, "record", "-o", out]
    for o in options:
        args += ["--option", o]
    r = subprocess.run(args + ["--"] + argv, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    traces = sorted(os.path.join(out, f) for f in os.listdir(out) if f.endswith(".hst"))
    if not traces:
        raise RuntimeError(f"{argv}: no trace: {r.stderr}")
    return traces, r.stderr


def check_recording(hs, work, tag, argv, options=()):
    traces, summary = record(hs, work, tag, argv, options)
    report = run([hs, "report"] + traces).stdout
    procs, family = parse_report(report)
    check(f"{tag}: one report section per trace", len(procs), len(traces))
    for trace, r in zip(traces, procs):
        check_trace(hs, trace, r, work)
    # record's summary: the largest peak and the summed allocations.
    m = re.search(r"peak heap: ([\d,]+) bytes.*?; ([\d,]+) allocations, ([\d,]+) frees, "
                  r"([\d,]+) bytes", summary)
    if m is None:
        FAILURES.append(f"{tag}: no peak line in record's summary: {summary}")
    else:
        check(f"{tag}: record summary (peak, allocs, frees, bytes)",
              tuple(number(m[i]) for i in range(1, 5)),
              (max(r["peak"] for r in procs), sum(r["allocs"] for r in procs),
               sum(r["frees"] for r in procs), sum(r["bytes"] for r in procs)))
    # record's summary: the leak classes, summed (leaks' JSON totals).
    leaks = json.loads(run([hs, "leaks", "--format", "json"] + traces).stdout)["totals"]
    for label, key in (("definitely lost", "definitely_lost"), ("indirectly lost", "indirectly_lost"),
                       ("possibly lost", "possibly_lost"), ("still reachable", "still_reachable")):
        m = re.search(label + r": ([\d,]+) bytes.*? in ([\d,]+) blocks?", summary)
        if m:
            c = leaks["classes"][key]
            check(f"{tag}: record summary/leaks '{label}'", (number(m[1]), number(m[2])),
                  (c["bytes"], c["blocks"]))
    if len(traces) > 1:
        check(f"{tag}: family allocations", family["allocs"], sum(r["allocs"] for r in procs))
        check(f"{tag}: family bytes", family["bytes"], sum(r["bytes"] for r in procs))
        check(f"{tag}: family frees", family["frees"], sum(r["frees"] for r in procs))
        check(f"{tag}: family peak", family["peak"], max(r["peak"] for r in procs))
        check(f"{tag}: family not freed", family["not_freed"],
              sum(r["not_freed"] for r in procs))
        leaks = json.loads(run([hs, "leaks", "--format", "json"] + traces).stdout)["totals"]
        check(f"{tag}: leaks family not_freed_bytes", leaks.get("not_freed_bytes"),
              family["not_freed"])
    return procs


def main():
    hs, examples, fork_program = sys.argv[1:4]
    with tempfile.TemporaryDirectory(prefix="heapsight-totals-") as work:
        for name in sorted(os.listdir(examples)):
            exe = os.path.join(examples, name)
            if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
                continue
            args = [exe] if name == "main_demo" else [exe, "costly"]
            check_recording(hs, work, name, args)
        # Sampled: every total an estimate, the same in every command.
        procs = check_recording(hs, work, "sampled",
                                [os.path.join(examples, "04_vector_growth"), "costly"],
                                ["sample-bytes=65536"])
        check("sampled: report says its totals are estimates", procs[0].get("estimated"), True)
        # A fork/exec family: bash forks a child that execs a forking
        # program, then execs a lesson itself (its image ends in exec).
        leaks06 = os.path.join(examples, "06_memory_leaks")
        procs = check_recording(hs, work, "family",
                                ["/bin/bash", "-c",
                                 f"{fork_program} >/dev/null; exec {leaks06} costly"])
        check("family: more than three processes", len(procs) > 3, True)
        check("family: an image ended in exec", any(r["exec"] for r in procs), True)
    for f in FAILURES:
        print("FAIL", f)
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
