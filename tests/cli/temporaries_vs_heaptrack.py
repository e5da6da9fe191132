#!/usr/bin/env python3
"""Compares heapsight's temporary allocations per call site with heaptrack's.

Manual tool behind the table in docs/temporaries.md (not run by meson test:
heaptrack is not a build dependency). For each program it runs
`heapsight record` and `heaptrack`, folds both with the temporary metric
(`heapsight collapse --metric temporary`, `heaptrack_print -F ...
--flamegraph-cost-type temporary`), sums the counts by the allocating
function (the leaf frame, names normalized: no "(anonymous namespace)::",
no "(file)" suffix) and prints the functions where the two differ.

usage: temporaries_vs_heaptrack.py HEAPSIGHT PROGRAM [PROGRAM...]
"""
import collections
import glob
import os
import re
import subprocess
import sys
import tempfile


def normalize(frame):
    frame = re.sub(r" \([^()]*\)$", "", frame.strip())  # heaptrack's " (file.cc)"
    frame = re.sub(r"\([^()]*\)$", "", frame)  # a parameter list
    frame = frame.replace("(anonymous namespace)::", "")
    return frame


def fold(text, skip_zero=True):
    by_leaf = collections.Counter()
    for line in text.splitlines():
        stack, _, value = line.rpartition(" ")
        frames = [f for f in stack.split(";") if f.strip()]
        if not frames or not value.isdigit():
            continue
        by_leaf[normalize(frames[-1])] += int(value)
    return by_leaf


def main():
    heapsight, programs = sys.argv[1], sys.argv[2:]
    for program in map(os.path.abspath, programs):
        with tempfile.TemporaryDirectory() as tmp:
            trace = os.path.join(tmp, "t.hst")
            subprocess.run([heapsight, "record", "-q", "-o", trace, "--", program],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            ours = fold(subprocess.run([heapsight, "collapse", "--metric", "temporary", trace],
                                       capture_output=True, text=True).stdout)
            subprocess.run(["heaptrack", "-o", os.path.join(tmp, "ht"), program], cwd=tmp,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            data = glob.glob(os.path.join(tmp, "ht*.zst"))[0]
            folded = os.path.join(tmp, "ht.folded")
            subprocess.run(["heaptrack_print", "--flamegraph-cost-type", "temporary", "-F", folded,
                            data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(folded) as f:
                theirs = fold(f.read())
        total_ours, total_theirs = sum(ours.values()), sum(theirs.values())
        print(f"== {os.path.basename(program)}: heapsight {total_ours}, heaptrack {total_theirs}")
        for leaf in sorted(set(ours) | set(theirs)):
            if ours[leaf] != theirs[leaf]:
                print(f"  {leaf}: heapsight {ours[leaf]}, heaptrack {theirs[leaf]}")


if __name__ == "__main__":
    main()
