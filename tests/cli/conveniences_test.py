#!/usr/bin/env python3
# tests/cli/conveniences_test.py: issue 17's command-line conveniences, end
# to end on traces recorded with the real preload (churn_program):
#  - html without -o (default name from the trace, "wrote ... to ...");
#  - "-" reads a trace from standard input (pipe and redirect), no trace
#    argument takes the newest heapsight.*.hst here;
#  - every row of the exit-status table (docs/cli.md), 4 (truncated input)
#    for every trace-reading command;
#  - --color=always|never, NO_COLOR, pipes; uncoloured text unchanged;
#  - the progress bar on a pseudo-terminal only.
# Usage: conveniences_test.py HEAPSIGHT CHURN_PROGRAM
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from checks import FAILURES, check, check_true  # noqa: E402
ANSI = re.compile(r"\x1b\[[0-9;]*m")




def run(args, cwd=None, stdin=subprocess.DEVNULL, env=None, input_bytes=None):
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.update(env or {})
    return subprocess.run(args, cwd=cwd, stdin=None if input_bytes is not None else stdin,
                          input=input_bytes, capture_output=True, env=e)


def run_on_pty(args, cwd, env=None):
    """Runs args with stdout and stderr on a pseudo-terminal; returns (status, bytes)."""
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.update(env or {})
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execve(args[0], args, e)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out


def record(hs, churn, out_dir, n):
    os.makedirs(out_dir, exist_ok=True)
    r = run([hs, "record", "-o", out_dir, "--", churn, str(n)])
    traces = sorted(f for f in os.listdir(out_dir) if f.endswith(".hst"))
    if len(traces) != 1:
        raise RuntimeError(f"record: {traces}: {r.stderr.decode()}")
    return os.path.join(out_dir, traces[0])


def test_html_default_output(hs, trace, work):
    d = os.path.join(work, "html")
    os.mkdir(d)
    r = run([hs, "html", trace], cwd=d)
    name = os.path.basename(trace)[:-4] + ".html"
    check("html: status", r.returncode, 0)
    check("html: stderr", r.stderr.decode(), f"heapsight: wrote the HTML report to {name}\n")
    check_true("html: file written", os.path.exists(os.path.join(d, name)), os.listdir(d))
    with open(os.path.join(d, name)) as f:
        check_true("html: a page", f.read(200).lstrip().lower().startswith("<!doctype html"))
    # Two traces: one page of the family.
    r = run([hs, "html", trace, trace + ".copy.hst"], cwd=d)
    check("html family: status", r.returncode, 0)
    family = os.path.basename(trace)[:-4] + ".family.html"
    check("html family: stderr", r.stderr.decode(),
          f"heapsight: wrote the HTML report to {family}\n")


def test_stdin(hs, trace, work):
    want = run([hs, "report", trace]).stdout.decode().replace(trace, "<stdin>")
    with open(trace, "rb") as f:
        data = f.read()
    # A pipe (spooled to an unlinked file) and a redirected file.
    piped = run([hs, "report", "-"], input_bytes=data)
    check("report - (pipe): status", piped.returncode, 0)
    check("report - (pipe): same report, trace named <stdin>", piped.stdout.decode(), want)
    with open(trace, "rb") as f:
        redirected = run([hs, "report", "-"], stdin=f)
    check("report - (redirect): same report", redirected.stdout.decode(), want)
    leaks = run([hs, "leaks", "--format=json", "-"], input_bytes=data)
    check("leaks - : status", leaks.returncode, 0)
    check_true("leaks - : 3 definite leaks of 100 bytes",
               b'"definitely_lost"' in leaks.stdout and b"300" in leaks.stdout, leaks.stdout[:400])
    dump = run([hs, "dump", "-"], input_bytes=data)
    check("dump - : status", dump.returncode, 0)
    # The same records; only the first line names the file.
    check("dump - : same records as the file", dump.stdout.split(b"\n", 1)[1],
          run([hs, "dump", trace]).stdout.split(b"\n", 1)[1])
    d = os.path.join(work, "stdin-pprof")
    os.mkdir(d)
    pprof = run([hs, "pprof", "-"], cwd=d, input_bytes=data)
    check("pprof - : stderr", pprof.stderr.decode(),
          "heapsight: wrote the pprof profile to heapsight.pb.gz\n")
    check("pprof - : same profile as the file",
          open(os.path.join(d, "heapsight.pb.gz"), "rb").read()[:2], b"\x1f\x8b")
    # The spool file is unlinked: nothing is left in TMPDIR.
    tmp = os.path.join(work, "tmp")
    os.mkdir(tmp)
    r = run([hs, "report", "-"], input_bytes=data, env={"TMPDIR": tmp})
    check("report - : status with TMPDIR", r.returncode, 0)
    check("report - : nothing left in TMPDIR", os.listdir(tmp), [])
    bad = run([hs, "report", "-"], input_bytes=b"not a trace at all")
    check("report - (garbage): bad input status", bad.returncode, 3)
    check_true("report - (garbage): names <stdin>", b"<stdin>" in bad.stderr, bad.stderr)
    twice = run([hs, "diff", "-", "-"], input_bytes=data)
    check("diff - - : usage error", twice.returncode, 2)
    # --family looks for relatives in the trace's directory: stdin has none.
    for cmd in (["pprof", "-o", os.path.join(work, "f.pb.gz")], ["html", "-o", os.path.join(work, "f.html")],
                ["collapse"], ["flamegraph", "-o", os.path.join(work, "f.svg")]):
        fam = run([hs] + cmd + ["--family", "-"], input_bytes=data)
        check(f"{cmd[0]} --family - : usage error", fam.returncode, 2)
        check_true(f"{cmd[0]} --family - : says why",
                   b"--family: standard input (-) has no directory" in fam.stderr, fam.stderr)
    fam = run([hs, "pprof", "-o", os.path.join(work, "g.pb.gz"), "--family", trace])
    check("pprof --family TRACE: status", fam.returncode, 0)


def test_newest_default(hs, trace, work):
    d = os.path.join(work, "newest")
    os.mkdir(d)
    old = os.path.join(d, "heapsight.old.1.hst")
    new = os.path.join(d, "heapsight.churn.2.hst")
    shutil.copy(trace, old)
    shutil.copy(trace, new)
    os.utime(old, (time.time() - 100, time.time() - 100))
    os.utime(new, (time.time() - 10, time.time() - 10))
    for cmd in (["report"], ["leaks"], ["growth"], ["dump"], ["collapse"]):
        r = run([hs] + cmd, cwd=d)
        check(f"{cmd[0]} (no trace): status", r.returncode, 0)
        check_true(f"{cmd[0]} (no trace): says which trace",
                   r.stderr.decode().startswith(
                       "heapsight: reading heapsight.churn.2.hst, the newest trace in the "
                       "current directory\n"), r.stderr.decode())
    r = run([hs, "report"], cwd=d)
    check("report (no trace): the newest one's report",
          r.stdout.decode().replace("heapsight.churn.2.hst", "T"),
          run([hs, "report", "heapsight.churn.2.hst"], cwd=d).stdout.decode().replace(
              "heapsight.churn.2.hst", "T"))
    empty = os.path.join(work, "empty-dir")
    os.mkdir(empty)
    for cmd in ("report", "leaks", "pprof", "html", "dump"):
        r = run([hs, cmd], cwd=empty)
        check(f"{cmd} (no trace, none here): usage status", r.returncode, 2)
        check_true(f"{cmd} (no trace, none here): message",
                   b"no heapsight.*.hst in the current directory" in r.stderr, r.stderr)


def test_exit_statuses(hs, trace, work):
    # 2: usage errors.
    for args in (["reprot", trace], ["report", "--bogus", trace], ["--color=sometimes", "report"],
                 ["leaks", "--leak-kinds=nonsense", trace], ["pprof", "--at=never", trace],
                 ["diff", trace]):
        check(f"{args}: usage status", run([hs] + args).returncode, 2)
    # 3: bad input, every trace-reading command.
    empty = os.path.join(work, "empty.hst")
    open(empty, "w").close()
    cut = os.path.join(work, "cut.hst")
    with open(trace, "rb") as f, open(cut, "wb") as g:
        g.write(f.read(40))
    out = os.path.join(work, "out")
    for bad in (empty, cut, "/nonexistent/t.hst"):
        for args in (["report", bad], ["leaks", bad], ["growth", bad], ["dump", bad],
                     ["diff", trace, bad], ["pprof", "-o", out, bad], ["collapse", bad],
                     ["flamegraph", "-o", out, bad], ["html", "-o", out, bad]):
            r = run([hs] + args)
            check(f"{args}: bad input status", r.returncode, 3)
            check_true(f"{args}: one error line", r.stderr.decode().count("\n") == 1 and
                       r.stderr.decode().startswith("heapsight: "), r.stderr.decode())
    # 1: other errors (the output cannot be written).
    r = run([hs, "pprof", "-o", "/nonexistent/dir/x.pb.gz", trace])
    check("pprof -o unwritable: status", r.returncode, 1)
    # The gates: the status the user set.
    check("leaks --leak-exitcode=7 (3 definite leaks)",
          run([hs, "leaks", "--leak-exitcode=7", trace]).returncode, 7)
    check("leaks without a gate", run([hs, "leaks", trace]).returncode, 0)
    small = record(hs, CHURN, os.path.join(work, "small"), 10)
    check("diff --fail-above=0 --fail-exitcode=9 (more allocated)",
          run([hs, "diff", "--fail-above=0", "--fail-exitcode=9", small, trace]).returncode, 9)
    check("diff --fail-above=0, no growth",
          run([hs, "diff", "--fail-above=0", "--fail-exitcode=9", trace, small]).returncode, 0)


def test_truncated(hs, big, work):
    # 4: truncated input (docs/cli.md): the output is written from the
    # recorded part, a warning names the trace, the status says so.
    with open(big, "rb") as f:
        data = f.read()
    # Cut inside a block, past two thirds of the file: the blocks of this
    # trace are ~190 bytes, as regular as its program, so a cut at a fixed
    # fraction fell on a block boundary in about one run in ten ("no end
    # record" instead of "ends inside a block"). dump names each block's
    # offset.
    starts = [int(m) for m in re.findall(rb"^chunk at (\d+):", run([hs, "dump", big]).stdout,
                                         re.M)]
    cut = next(o for o in starts if o >= len(data) * 2 // 3) + 10
    truncated = os.path.join(work, "truncated.hst")
    with open(truncated, "wb") as g:
        g.write(data[:cut])
    out = os.path.join(work, "cut-out")
    for args in (["report", truncated], ["leaks", truncated], ["growth", truncated],
                 ["dump", truncated], ["diff", big, truncated], ["collapse", truncated],
                 ["pprof", "-o", out + ".pb.gz", truncated],
                 ["flamegraph", "-o", out + ".svg", truncated],
                 ["html", "-o", out + ".html", truncated]):
        r = run([hs] + args)
        check(f"{args[0]} (truncated): status", r.returncode, 4)
        check_true(f"{args[0]} (truncated): warns, naming the trace",
                   f"{truncated}: trace cut short (the file ends inside a block)".encode()
                   in r.stderr, r.stderr)
        written = os.path.getsize(args[2]) if args[1] == "-o" else len(r.stdout)
        check_true(f"{args[0]} (truncated): output written", written > 0, r.stderr)
    piped = run([hs, "report", "-"], input_bytes=data[:len(data) * 2 // 3])
    check("report - (truncated): status", piped.returncode, 4)
    check_true("report - (truncated): names <stdin>", b"<stdin>: trace cut short" in piped.stderr,
               piped.stderr)
    # A gate that fires keeps its own status; a complete trace exits 0.
    small = record(hs, CHURN, os.path.join(work, "small-cut"), 10)
    check("diff --fail-above=0 --fail-exitcode=9, truncated: the gate's status",
          run([hs, "diff", "--fail-above=0", "--fail-exitcode=9", small, truncated]).returncode, 9)
    check("report (complete): status", run([hs, "report", big]).returncode, 0)


def test_color(hs, trace, work):
    for cmd in ("leaks", "report"):
        plain = run([hs, cmd, trace])
        never = run([hs, "--color=never", cmd, trace])
        always = run([hs, cmd, "--color=always", trace])
        no_color = run([hs, "--color=auto", cmd, trace], env={"NO_COLOR": "1"})
        check(f"{cmd}: pipe has no escapes", b"\x1b[" in plain.stdout, False)
        check(f"{cmd} --color=never: same as the pipe", never.stdout, plain.stdout)
        check(f"{cmd} NO_COLOR: same as the pipe", no_color.stdout, plain.stdout)
        check_true(f"{cmd} --color=always: escapes", b"\x1b[" in always.stdout, always.stdout[:200])
        check(f"{cmd} --color=always minus escapes: the plain text",
              ANSI.sub("", always.stdout.decode()), plain.stdout.decode())
    always = run([hs, "--color=always", "leaks", trace]).stdout.decode()
    check_true("leaks: 'Direct leak' in bold red", "\x1b[1;31mDirect leak\x1b[0m of 100" in always,
               always[:300])
    check_true("leaks: the banner in bold red",
               re.search(r"\x1b\[1;31mERROR: heapsight: detected memory leaks", always), always[:300])
    report = run([hs, "--color=always", "report", trace]).stdout.decode()
    check_true("report: the process header in bold cyan", report.startswith("\x1b[1;36m== process "),
               report[:100])
    json = run([hs, "--color=always", "leaks", "--format=json", trace])
    check("leaks --format=json: never coloured", b"\x1b[" in json.stdout, False)
    err = run([hs, "--color=always", "report", "/nonexistent/t.hst"]).stderr.decode()
    check("errors: 'heapsight:' in bold red", err,
          "\x1b[1;31mheapsight:\x1b[0m /nonexistent/t.hst: No such file or directory\n")
    # auto on a terminal: colour, unless NO_COLOR.
    status, out = run_on_pty([hs, "leaks", trace], work)
    check("leaks on a pty: status", status, 0)
    check_true("leaks on a pty: coloured", b"\x1b[1;31mDirect leak" in out, out[:200])
    status, out = run_on_pty([hs, "leaks", trace], work, env={"NO_COLOR": "1"})
    check("leaks on a pty with NO_COLOR: no escapes", b"\x1b[" in out, False)
    status, out = run_on_pty([hs, "--color=never", "leaks", trace], work)
    check("leaks on a pty with --color=never: no escapes", b"\x1b[" in out, False)


def test_progress_bar(hs, big, work):
    # The bar is drawn once an analysis runs for HEAPSIGHT_PROGRESS_AFTER_MS
    # (default 1000); 0 shows it at once, so this test needs no timing.
    for cmd in (["report"], ["leaks"], ["growth"], ["html", "-o", os.path.join(work, "p.html")],
                ["pprof", "-o", os.path.join(work, "p.pb.gz")], ["collapse", "-o", "/dev/null"]):
        # No analysis cache: a warm one answers before any progress is due.
        status, out = run_on_pty([hs] + cmd + [big], work, env={"HEAPSIGHT_PROGRESS_AFTER_MS": "0",
                                                                "HEAPSIGHT_NO_CACHE": "1"})
        check(f"{cmd[0]} on a pty: status", status, 0)
        # Drawn, then the line cleared before the command's own output.
        check_true(f"{cmd[0]} on a pty: a progress bar, then cleared",
                   re.search(rb"\ranalyzing \[#+\.*\] +\d+%.*\r {50,}\r", out, re.S), out[:300])
        r = run([hs] + cmd + [big], env={"HEAPSIGHT_PROGRESS_AFTER_MS": "0"})
        check(f"{cmd[0]} to a pipe: no progress bar", b"analyzing [" in r.stderr, False)
    # dump: a bar when its records go to a file, none when they share the
    # terminal with it.
    dumped = os.path.join(work, "dump.txt")
    status, out = run_on_pty(["/bin/sh", "-c", f"exec '{hs}' dump '{big}' > '{dumped}'"], work,
                             env={"HEAPSIGHT_PROGRESS_AFTER_MS": "0"})
    check("dump > file on a pty: status", status, 0)
    check_true("dump > file on a pty: a progress bar, then cleared",
               re.search(rb"\rdumping \[#+\.*\] +\d+%.*\r {50,}\r", out, re.S), out[:300])
    check_true("dump > file: the records", os.path.getsize(dumped) > 100000)
    r = run([hs, "dump", big], env={"HEAPSIGHT_PROGRESS_AFTER_MS": "0"})
    check("dump to a pipe: no progress bar", b"dumping [" in r.stderr, False)
    # The default delay: an analysis this short draws nothing.
    status, out = run_on_pty([hs, "report", big], work, env={"HEAPSIGHT_PROGRESS_AFTER_MS": "600000"})
    check("report on a pty, long delay: no bar", b"analyzing [" in out, False)


def main():
    global CHURN
    hs, CHURN = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="conveniences_test.") as work:
        trace = record(hs, CHURN, os.path.join(work, "t"), 1000)
        shutil.copy(trace, trace + ".copy.hst")
        big = record(hs, CHURN, os.path.join(work, "big"), 300000)
        for test, arg in ((test_html_default_output, trace), (test_stdin, trace),
                          (test_newest_default, trace), (test_exit_statuses, trace),
                          (test_color, trace), (test_progress_bar, big), (test_truncated, big)):
            test(hs, arg, work)
    for f in FAILURES:
        print("FAIL:", f)
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
