#!/usr/bin/env python3
# tests/serve/rotated_outputs_test.py: `heapsight growth` (text and JSON) and
# `heapsight html` mark a segment that `record --rotate-size` closed, as
# `report` and `leaks` do: the run continues in the next segment, whose name
# they give, and the blocks live at the cut are carried into it (not leaks).
# A real rotated trace: phase_program.cc in churn mode under
# `record --rotate-size=64K`, which keeps PhaseOneAlloc's 100 blocks of
# 10000 bytes and LoseThree's 3 of 333 live across every segment.
#  - growth text: the rotation line, "live at the segment's end", never
#    "not freed at exit"; the last segment (the process's own end) the other
#    way round;
#  - growth JSON: "rotated", "next_segment" and totals'
#    carried_by_rotation_bytes/blocks, the numbers of the leaks JSON;
#    PhaseOneAlloc's and LoseThree's sites live at the cut, to the byte
#    (report JSON);
#  - html: the segment renamed with & < > " in its name, so the next
#    segment's name on the page must be escaped.
# Usage: rotated_outputs_test.py HEAPSIGHT PHASE_PROGRAM
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from checks import FAILURES, check, check_true  # noqa: E402
HEAPSIGHT, PROGRAM = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])




def run(*args):
    r = subprocess.run([HEAPSIGHT, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def segment_number(name):
    return int(name.split(".")[-2])


def record_segments(tmp):
    """Records the churn program until it has written at least 3 segments."""
    out = os.path.join(tmp, "out")
    os.mkdir(out)
    rec = subprocess.Popen([HEAPSIGHT, "record", "--rotate-size=64K", "-o", out, "--",
                            PROGRAM, tmp, "churn"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and \
                max([segment_number(f) for f in os.listdir(out) if f.endswith(".hst")] or [0]) < 3:
            time.sleep(0.2)
        open(os.path.join(tmp, "stop"), "w").close()
        _, err = rec.communicate(timeout=120)
        check("record status", rec.returncode, 0)
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()
    segments = sorted((f for f in os.listdir(out) if f.endswith(".hst")), key=segment_number)
    check_true("at least 3 segments", len(segments) >= 3, err.decode()[-2000:])
    return out, segments


def site_of(sites, function):
    """The one report-JSON site whose frames name `function`."""
    found = [s for s in sites
             if any(f["function"] == f"(anonymous namespace)::{function}()" for f in s["frames"])]
    check(f"sites naming {function}", len(found), 1)
    return found[0] if found else {"not_freed_count": None, "not_freed_bytes": None}


def main():
    tmp = tempfile.mkdtemp(prefix="rotated_outputs.")
    try:
        out, segments = record_segments(tmp)
        if len(segments) < 3:
            return
        # A rotated segment from the middle: it starts with the blocks the
        # previous one carried and ends by rotation.
        middle = segments[1]
        n = segment_number(middle)
        path = os.path.join(out, middle)
        nxt = re.sub(r"\.\d+\.hst$", f".{n + 1}.hst", middle)
        last = os.path.join(out, segments[-1])

        st, text, err = run("growth", path)
        check("growth status", st, 0)
        check_true("growth text: rotation line",
                   f"segment closed by rotation; the run continues in {nxt}: the blocks live at "
                   "its end are carried into it (not leaks)\n" in text, text[:2000])
        check_true("growth text: live at the segment's end",
                   "; live at the segment's end " in text and "not freed at exit" not in text,
                   text[:2000])

        st, growth_json, err = run("growth", "--format=json", path)
        check("growth JSON status", st, 0)
        g = json.loads(growth_json)["processes"][0]
        st, leaks_json, err = run("leaks", "--format=json", path)
        check("leaks JSON status", st, 0)
        lp = json.loads(leaks_json)["processes"][0]
        check("growth JSON rotated/next_segment", (g.get("rotated"), g.get("next_segment")),
              (True, nxt))
        check("the same in leaks JSON", (lp.get("rotated"), lp.get("next_segment")), (True, nxt))
        check("growth JSON carried = leaks JSON carried",
              (g["totals"].get("carried_by_rotation_bytes"),
               g["totals"].get("carried_by_rotation_blocks")),
              (lp.get("carried_by_rotation_bytes"), lp.get("carried_by_rotation_blocks")))
        st, report_json, err = run("report", "--format=json", "--top=50", path)
        check("report JSON status", st, 0)
        rp = json.loads(report_json)["processes"][0]
        sites = rp["top_sites"]["by_not_freed_bytes"]
        one, lost = site_of(sites, "PhaseOneAlloc"), site_of(sites, "LoseThree")
        check("PhaseOneAlloc live at the cut", (one["not_freed_count"], one["not_freed_bytes"]),
              (100, 1000000))
        check("LoseThree live at the cut", (lost["not_freed_count"], lost["not_freed_bytes"]),
              (3, 999))
        check_true("carried holds them",
                   (g["totals"].get("carried_by_rotation_bytes") or 0) >= 1000999, str(g["totals"]))
        check("growth JSON not freed = report JSON not freed",
              (g["totals"]["not_freed_bytes"], g["totals"]["not_freed_blocks"]),
              (rp["totals"]["not_freed_bytes"], rp["totals"]["not_freed_blocks"]))

        # The last segment ends with the process: not rotated.
        st, text, err = run("growth", last)
        check_true("last segment: growth text", "not freed at exit" in text
                   and "segment closed by rotation" not in text, text[:2000])
        st, growth_json, err = run("growth", "--format=json", last)
        g = json.loads(growth_json)["processes"][0]
        check("last segment: no rotation in growth JSON",
              ("rotated" in g, "next_segment" in g, "carried_by_rotation_bytes" in g["totals"]),
              (False, False, False))

        # A family of the rotated segment and the last one: the rotated
        # segment's live blocks are carried, not "not freed at exit".
        st, fam_json, err = run("report", "--format=json", path, last)
        check("family report JSON status", st, 0)
        fam = json.loads(fam_json)
        mid_t, last_t = (q["totals"] for q in fam["processes"])
        total = fam.get("total", {})
        check("family JSON: not freed = the last segment's only",
              (total.get("not_freed_bytes"), total.get("not_freed_blocks")),
              (last_t["not_freed_bytes"], last_t["not_freed_blocks"]))
        check("family JSON: carried = the rotated segment's live blocks",
              (total.get("carried_by_rotation_bytes"), total.get("carried_by_rotation_blocks")),
              (mid_t["not_freed_bytes"], mid_t["not_freed_blocks"]))
        st, fam_text, err = run("report", path, last)
        check("family report status", st, 0)
        tail = fam_text[fam_text.find("== total"):]
        check_true("family text: not freed = the last segment's",
                   "not freed at exit: %s bytes (" % f"{last_t['not_freed_bytes']:,}" in tail,
                   tail)
        check_true("family text: one segment carried",
                   "closed by rotation: 1 segment; %s bytes (" % f"{mid_t['not_freed_bytes']:,}"
                   in tail and "carried into later segments (not leaks)" in tail, tail)

        # html, with a segment name that must be escaped.
        odd = os.path.join(out, 'a&b<"c">.' + str(n) + ".hst")
        shutil.copyfile(path, odd)
        page_path = os.path.join(tmp, "page.html")
        st, _, err = run("html", "-o", page_path, odd)
        check("html status", st, 0)
        page = open(page_path, encoding="utf-8").read()
        escaped_next = "a&amp;b&lt;&quot;c&quot;&gt;." + str(n + 1) + ".hst"
        check_true("html: rotation note, escaped",
                   '<span class="rotated">segment closed by rotation; the run continues in '
                   + escaped_next + "</span>" in page, err)
        check_true("html: no unescaped name", 'a&b<"c">' not in page)
        check_true("html: summary row",
                   "live at the segment&apos;s end</th><td class=\"n\">" in page
                   and "(carried into " + escaped_next + "; not leaks)</td>" in page)
        check_true("html: table title",
                   "Live at the segment&apos;s end (carried into the next segment by rotation: "
                   "not leaks)" in page)
        check_true("html: no exit row", ">not freed at exit</th><td" not in page)
        check_true("html: glossary", "Carried by rotation</dt>" in page)
        page_path = os.path.join(tmp, "last.html")
        st, _, err = run("html", "-o", page_path, last)
        page = open(page_path, encoding="utf-8").read()
        check_true("html of the last segment: not rotated",
                   '<span class="rotated">' not in page
                   and ">not freed at exit</th><td" in page, err)
    except Exception as e:  # a failed wait or parse is a failure, not a crash
        FAILURES.append(repr(e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for f in FAILURES:
        print("FAIL:", f)
    print("rotated_outputs_test:", "FAILED" if FAILURES else "OK")


if __name__ == "__main__":
    main()
    sys.exit(1 if FAILURES else 0)
