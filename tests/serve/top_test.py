#!/usr/bin/env python3
# tests/serve/top_test.py: `heapsight top` in a real terminal (tmux, on a
# private tmux server): `top -- PROG` starts the program under `record
# --serve` and shows its growing call site first; the keys sort, pause and
# quit (which stops the program); `top ADDR` attaches to a running `record
# --serve`, and `--once` prints one view.
# Usage: top_test.py HEAPSIGHT PHASE_PROGRAM
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
SERVER = f"heapsight-top-test-{os.getpid()}"  # a tmux server of our own
# Deadlines only end waits that would never end (a hang); what is checked
# after them is exact. 120 s: far above a loaded 2-core machine's seconds
# (flaky23, 2026-12-07; these were 30-40 s).
HANG_SECONDS = 120


def tmux(*args):
    return subprocess.run(["tmux", "-L", SERVER, *args], capture_output=True, text=True)


def pane():
    return tmux("capture-pane", "-p", "-t", "top").stdout


def wait_pane(pattern, timeout=HANG_SECONDS):
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline:
        text = pane()
        if re.search(pattern, text, re.M):
            return text
        time.sleep(0.2)
    raise RuntimeError(f"{pattern!r} never showed; the pane:\n{text}")


def running(program, arg):
    """Pids whose command line is exactly `program arg ...`."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) >= 2 and argv[0].decode(errors="replace") == program and \
                argv[1].decode(errors="replace") == arg:
            pids.append(int(entry))
    return pids


def data_rows(text):
    """The site rows under the column header, in order."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"\s+LIVE\s+GROWTH/s", line):
            return [l for l in lines[i + 1:] if l.strip()]
    return []


def test_top_program(tmp):
    cmd = f"{HEAPSIGHT} top -- {PROGRAM} {tmp} grow; echo EXIT=$?; sleep 60"
    tmux("new-session", "-d", "-s", "top", "-x", "200", "-y", "30", cmd)
    try:
        # GrowForever passes PhaseOneAlloc's 976.6 KiB within a few seconds
        # and then stays first.
        text = wait_pane(r"^\s+\S+ \S+\s+\S+ \S+\s+\S+ \S+\s+\d+\s+.*GrowForever", 60)
        deadline = time.time() + HANG_SECONDS
        while time.time() < deadline and "GrowForever" not in (data_rows(text) or [""])[0]:
            time.sleep(0.3)
            text = pane()
        rows = data_rows(text)
        check_true("the growing site shows first", rows and "GrowForever" in rows[0], text)
        check_true("PhaseOneAlloc is listed", any("PhaseOneAlloc" in r for r in rows), text)
        # 640 KiB/s nominal; a window that catches two of the program's
        # 1 s flushes under load reads 1.2 MiB/s, so either unit passes
        # (0 B or a few bytes a second does not).
        check_true("growth per second of the growing site",
                   rows and re.match(r"\s+\S+ \S+\s+[1-9]\d*(\.\d+)? (KiB|MiB)", rows[0])
                   is not None, text)
        tmux("send-keys", "-t", "top", "g")
        wait_pane(r"sort: growth/s", 10)
        tmux("send-keys", "-t", "top", "p")
        wait_pane(r"\[paused\]", 10)
        tmux("send-keys", "-t", "top", "p")
        tmux("send-keys", "-t", "top", "q")
        text = wait_pane(r"^EXIT=", 30)
        check("top's status after q", re.search(r"^EXIT=(\d+)", text, re.M).group(1), "0")
        # The program was stopped with it.
        time.sleep(0.5)
        check("the program is gone", running(PROGRAM, tmp), [])
    finally:
        tmux("kill-server")


def test_top_attach(tmp):
    sock = os.path.join(tmp, "s.sock")
    rec = subprocess.Popen([HEAPSIGHT, "record", "-q", "--serve", sock, "-o", tmp, "--",
                            PROGRAM, tmp, "grow"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + HANG_SECONDS
        out = None
        while time.time() < deadline:
            out = subprocess.run([HEAPSIGHT, "top", "--once", "--rows", "12", sock],
                                 capture_output=True, text=True)
            if "GrowForever" in out.stdout and "PhaseOneAlloc" in out.stdout:
                break
            time.sleep(0.3)
        check("top --once status", out.returncode, 0)
        check_true("top --once shows the sites", "GrowForever" in out.stdout, out.stdout + out.stderr)
        check_true("--rows bounds the view", len(out.stdout.splitlines()) <= 12, out.stdout)
        tmux("new-session", "-d", "-s", "top", "-x", "160", "-y", "20",
             f"{HEAPSIGHT} top unix:{sock}; echo EXIT=$?; sleep 60")
        wait_pane(r"GrowForever", 30)
        open(os.path.join(tmp, "stop"), "w").close()  # the program ends: top with it
        text = wait_pane(r"^EXIT=", 30)
        check("top ADDR status when the server goes", re.search(r"^EXIT=(\d+)", text, re.M).group(1),
              "0")
        rec.wait(30)
    finally:
        tmux("kill-server")
        if rec.poll() is None:
            rec.kill()
            rec.wait()
    out = subprocess.run([HEAPSIGHT, "top", "--once", os.path.join(tmp, "gone.sock")],
                         capture_output=True, text=True)
    check("unreachable ADDR", out.returncode, 1)
    out = subprocess.run([HEAPSIGHT, "top"], capture_output=True, text=True)
    check("no ADDR nor PROGRAM", out.returncode, 2)


def main():
    if shutil.which("tmux") is None:
        print("SKIP: tmux is not installed")
        return 77
    for test in (test_top_program, test_top_attach):
        tmp = tempfile.mkdtemp(prefix="top_test.")
        try:
            test(tmp)
        except Exception as e:
            FAILURES.append(f"{test.__name__}: {e}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for f in FAILURES:
        print("FAIL:", f)
    print("top_test:", "FAILED" if FAILURES else "OK")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
