#!/usr/bin/env python3
# tests/serve/serve_test.py: `heapsight record --serve` end to end, with real
# clients against a live program (phase_program.cc) that allocates known
# amounts in phases:
#  - go tool pprof -raw reads /debug/pprof/heap and /debug/pprof/allocs after
#    each phase: exact counts and bytes per function, the default sample
#    type, ?pid= and the pid label;
#  - a delta profile (?seconds=N) over phase 2 equals phase 2's allocations;
#  - curl + promtool check /metrics; its numbers are the phase's;
#  - /debug/heapsight/leaks runs a scan now: LoseThree's 3 blocks are
#    definitely lost, in `heapsight leaks --format=json`'s schema;
#  - bad requests get 400/404/405 and the server keeps serving;
#  - --no-trace keeps the disk use of a long trace bounded and leaves
#    nothing behind;
#  - a program killed with SIGKILL mid-run leaves a readable trace;
#  - --rotate-size: segments that each read alone, --rotate-keep;
#  - address mode (--pairing=address): an idle program's last events show
#    (the time merge's clock), and two threads handing addresses to each
#    other are served exactly.
#
# Freshness: each phase of test_phases ends with heapsight_marker(), which
# flushes the program's only thread, so its assertions hold with or without
# HEAPSIGHT_FLUSH_MS. test_freshness checks a phase without a marker: every
# allocation must show while the program sits idle with a partial chunk,
# which only HEAPSIGHT_FLUSH_MS brings to the trace; it runs only when the
# preload knows HEAPSIGHT_FLUSH_MS (`heapsight options`), and is skipped
# before.
#
# No check here depends on how fast the machine is (flaky23, 2026-12-07):
# a deadline only ends a wait that would otherwise never end (HANG_SECONDS,
# far above any loaded run), and what is checked after it is exact. Before,
# the freshness phase had to show within 3 s and --no-trace's disk use had
# to stay under 1 MiB however far the live reading lagged behind the
# program: both can fail on a loaded 2-core machine with the product right.
# Usage: serve_test.py HEAPSIGHT PHASE_PROGRAM [HANDOFF_PROGRAM]
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from checks import FAILURES, check, check_true  # noqa: E402
HEAPSIGHT, PROGRAM = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
HANDOFF = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else None
PHASE_TIMEOUT = 120  # a hang guard: a phase shows in about a second on an idle machine
HANG_SECONDS = 240  # likewise for the long runs (a trace that must grow)
DELTA_SECONDS = 10  # the delta profile's window: phase 2 shows in ~0.1 s of it




class Session:
    """A `heapsight record --serve` run of PROGRAM; stderr read on a thread."""

    def __init__(self, workdir, mode="phases", extra=(), env=None, serve="127.0.0.1:0"):
        self.dir = workdir
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(
            [HEAPSIGHT, "record", "--serve", serve, *extra, "-o", workdir, "--",
             PROGRAM, workdir, mode],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=e, cwd=workdir)
        self.stderr = []
        self.addr = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                text = line.decode(errors="replace")
                self.stderr.append(text)
                m = re.search(r"serving (http://\S+|/\S+)", text)
                if m and self.addr is None:
                    self.addr = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        ready.wait(30)
        if self.addr is None:
            raise RuntimeError("no 'serving' line: " + "".join(self.stderr))

    def url(self, path):
        return self.addr + path

    def get(self, path, timeout=60):
        """(status, body bytes) of GET path."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def metrics(self):
        out = subprocess.run(["curl", "-sS", "--fail", self.url("/metrics")],
                             capture_output=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError("curl /metrics: " + out.stderr.decode())
        return out.stdout.decode()

    def finish(self, timeout=60):
        self.proc.wait(timeout)
        time.sleep(0.1)
        return self.proc.returncode


def metric(text, name, **labels):
    """The value of the first sample of `name` whose labels include `labels`."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(have.get(k) == str(v) for k, v in labels.items()):
            return int(float(m.group(3)))
    return None


def wait_metric(s, name, at_least, timeout=PHASE_TIMEOUT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = metric(s.metrics(), name)
        if v is not None and v >= at_least:
            return v
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not reach {at_least} within {timeout} s")


def pprof_raw(url, timeout=120):
    """go tool pprof -raw URL: {leaf function: [values]}, default type, labels."""
    env = dict(os.environ, PPROF_TMPDIR=tempfile.mkdtemp(prefix="pprof."), HOME="/nonexistent")
    out = subprocess.run(["go", "tool", "pprof", "-raw", url], capture_output=True,
                         timeout=timeout, env=env)
    shutil.rmtree(env["PPROF_TMPDIR"], ignore_errors=True)
    text = out.stdout.decode()
    if out.returncode != 0:
        raise RuntimeError(f"go tool pprof -raw {url}: {out.stderr.decode()}")
    lines = text.splitlines()
    types = []
    samples = []  # (values, [location ids], labels text)
    functions = {}  # location id -> innermost function
    section = None
    for line in lines:
        if line.startswith("Samples:"):
            section = "samples"
            continue
        if line.startswith("Locations"):
            section = "locations"
            continue
        if line.startswith("Mappings"):
            section = "mappings"
            continue
        if section == "samples":
            if not types:
                types = line.split()
                continue
            m = re.match(r"^\s+(-?\d+(?:\s+-?\d+)*):((?:\s+\d+)*)\s*$", line)
            if m:
                samples.append([[int(v) for v in m.group(1).split()],
                                [int(v) for v in m.group(2).split()], ""])
            elif samples:
                samples[-1][2] += line.strip() + " "
        elif section == "locations":
            m = re.match(r"^\s+(\d+): 0x[0-9a-f]+ M=\d+ (.*?) \S*:\d+ s=\d+", line)
            if m:
                functions[int(m.group(1))] = m.group(2)
    by_function = {}
    for values, locs, labels in samples:
        leaf = functions.get(locs[0], "?") if locs else "?"
        leaf = re.sub(r"^\(anonymous namespace\)::", "", leaf)
        total = by_function.setdefault(leaf, [0] * len(values))
        for i, v in enumerate(values):
            total[i] += v
    default = next((t for t in types if t.endswith("[dflt]")), None)
    return {"types": types, "default": default, "by_function": by_function,
            "labels": " ".join(s[2] for s in samples), "samples": samples}


def values(profile, function):
    """(alloc_objects, alloc_space, inuse_objects, inuse_space) of a leaf function."""
    v = profile["by_function"].get(function)
    return tuple(v[:4]) if v else None


def recv_all(conn):
    """Reads from the socket until the server closes it; returns the bytes."""
    reply = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return reply
        reply += chunk


def raw_request(s, data):
    """Sends raw bytes to the TCP server; returns the status code it answers."""
    host, port = s.addr[len("http://"):].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as c:
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        reply = recv_all(c)
    m = re.match(rb"HTTP/1\.1 (\d+) ", reply)
    return int(m.group(1)) if m else None


def test_phases(tmp):
    s = Session(tmp)
    try:
        wait_metric(s, "heapsight_markers_total", 1)
        text = s.metrics()
        pid = metric(text, "heapsight_process_running")
        pid = re.search(r'heapsight_process_running\{pid="(\d+)"', text).group(1)

        # Phase 1: 100 x 10000 kept, 3 x 333 lost.
        heap = pprof_raw(s.url("/debug/pprof/heap"))
        check("heap sample types", [t.replace("[dflt]", "") for t in heap["types"]],
              ["alloc_objects/count", "alloc_space/bytes", "inuse_objects/count",
               "inuse_space/bytes"])
        check("heap default", heap["default"], "inuse_space/bytes[dflt]")
        check("phase 1 PhaseOneAlloc", values(heap, "PhaseOneAlloc"), (100, 1000000, 100, 1000000))
        check("phase 1 LoseThree", values(heap, "LoseThree"), (3, 999, 3, 999))
        check("phase 1 PhaseTwoAlloc", values(heap, "PhaseTwoAlloc"), None)
        check_true("pid label", f"pid:[{pid}]" in heap["labels"], heap["labels"][:300])
        allocs = pprof_raw(s.url("/debug/pprof/allocs"))
        check("allocs default", allocs["default"], "alloc_space/bytes[dflt]")
        check("allocs PhaseOneAlloc", values(allocs, "PhaseOneAlloc"), (100, 1000000, 100, 1000000))
        one = pprof_raw(s.url(f"/debug/pprof/heap?pid={pid}"))
        check("?pid= PhaseOneAlloc", values(one, "PhaseOneAlloc"), (100, 1000000, 100, 1000000))
        check_true("?pid= has no pid label", "pid:[" not in one["labels"], one["labels"][:300])

        # /metrics: promtool's lint, and the phase's numbers.
        check_metrics(text, "phase 1")
        # The metrics are the profile's numbers (the program's few other
        # blocks included: its vector, its paths).
        live1 = metric(text, "heapsight_live_bytes", pid=pid)
        blocks1 = metric(text, "heapsight_live_blocks", pid=pid)
        frees1 = metric(text, "heapsight_frees_total", pid=pid)
        check("phase 1 live bytes", live1, sum(v[3] for v in heap["by_function"].values()))
        check("phase 1 live blocks", blocks1, sum(v[2] for v in heap["by_function"].values()))
        check("phase 1 allocated bytes", metric(text, "heapsight_allocated_bytes_total", pid=pid),
              sum(v[1] for v in heap["by_function"].values()))
        check("phase 1 frees = allocations - live blocks", frees1,
              metric(text, "heapsight_allocations_total", pid=pid) - blocks1)

        # Leaks on demand: a scan runs now; LoseThree's blocks are lost.
        status, body = s.get("/debug/heapsight/leaks")
        check("leaks status", status, 200)
        report = json.loads(body)
        lost = [g for g in report["groups"] if g["kind"] == "definite"]
        check("definite groups", [(g["blocks"], g["bytes"], g["frames"][0]["function"])
                                  for g in lost],
              [(3, 999, "(anonymous namespace)::LoseThree()")])
        check("leaks scanned", [p["scanned"] for p in report["processes"]], [True])
        text = s.metrics()
        check("leak scans", metric(text, "heapsight_leak_scans", pid=pid), 1)
        check("definite blocks metric", metric(text, "heapsight_leak_blocks", pid=pid,
                                               **{"class": "definite"}), 3)
        check_metrics(text, "after the scan")

        # Bad requests: answered, never fatal.
        for path, want in [("/debug/pprof/heap?seconds=abc", 400),
                           ("/debug/pprof/heap?seconds=0", 400),
                           ("/debug/pprof/heap?pid=1", 404),
                           ("/debug/pprof/heap?pid=x", 400),
                           ("/debug/pprof/heap?debug=1", 400),
                           ("/nope", 404), ("/debug/pprof/heap%zz", 400)]:
            check(f"GET {path}", s.get(path)[0], want)
        check("POST", raw_request(s, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), 405)
        check("garbage", raw_request(s, b"\x00\x01\x02 hello\r\n\r\n"), 400)
        check("too long", raw_request(s, b"GET /" + b"a" * 20000), 414)
        check("HTTP/2.0", raw_request(s, b"GET / HTTP/2.0\r\n\r\n"), 505)
        status, index = s.get("/debug/pprof/")
        check("index status", status, 200)
        check_true("index lists the process", f"heap?pid={pid}".encode() in index, index[:200])

        # Phase 2 inside a delta profile: +50 x 4096, -60 x 10000. The
        # delta's request is sent whole before phase 2 starts, and the
        # /metrics scrape after it is answered by the server's one thread
        # after that request was taken (its start snapshot): no sleep
        # guesses when the window opened. The window (DELTA_SECONDS) only
        # has to outlast phase 2 showing (one marker, one poll).
        delta = {}
        host, port = s.addr[len("http://"):].rsplit(":", 1)
        conn = socket.create_connection((host, int(port)), timeout=DELTA_SECONDS + 120)
        conn.sendall(f"GET /debug/pprof/heap?seconds={DELTA_SECONDS} HTTP/1.1\r\n"
                     "Host: x\r\nConnection: close\r\n\r\n".encode())

        def fetch():
            reply = recv_all(conn)
            conn.close()
            head, _, body = reply.partition(b"\r\n\r\n")
            if head.startswith(b"HTTP/1.1 200"):
                path = os.path.join(tmp, "delta.pb.gz")
                with open(path, "wb") as f:
                    f.write(body)
                delta["heap"] = pprof_raw(path)

        t = threading.Thread(target=fetch)
        t.start()
        s.metrics()
        open(os.path.join(tmp, "go2"), "w").close()
        wait_metric(s, "heapsight_markers_total", 2)
        t.join(DELTA_SECONDS + 240)
        d = delta.get("heap")
        check_true("delta fetched", d is not None)
        if d:
            check("delta PhaseTwoAlloc", values(d, "PhaseTwoAlloc"), (50, 204800, 50, 204800))
            check("delta PhaseOneAlloc", values(d, "PhaseOneAlloc"), (0, 0, -60, -600000))
            check("delta LoseThree", values(d, "LoseThree"), None)
        heap = pprof_raw(s.url("/debug/pprof/heap"))
        check("phase 2 PhaseOneAlloc", values(heap, "PhaseOneAlloc"), (100, 1000000, 40, 400000))
        check("phase 2 PhaseTwoAlloc", values(heap, "PhaseTwoAlloc"), (50, 204800, 50, 204800))
        text = s.metrics()
        check("phase 2 live bytes", metric(text, "heapsight_live_bytes", pid=pid) - live1,
              204800 - 600000)
        check("phase 2 live blocks", metric(text, "heapsight_live_blocks", pid=pid) - blocks1,
              50 - 60)
        check("phase 2 frees", metric(text, "heapsight_frees_total", pid=pid) - frees1, 60)
        check_metrics(text, "phase 2")
        open(os.path.join(tmp, "go3"), "w").close()
        check("record status", s.finish(), 0)

        # The served leaks JSON has `heapsight leaks --format=json`'s shape.
        traces = [f for f in os.listdir(tmp) if f.endswith(".hst")]
        check("one trace", len(traces), 1)
        out = subprocess.run([HEAPSIGHT, "leaks", "--format=json", os.path.join(tmp, traces[0])],
                             capture_output=True)
        final = json.loads(out.stdout)
        check("leaks JSON keys", sorted(report.keys()), sorted(final.keys()))
        check("leaks JSON schema", report.get("schema"), final.get("schema"))
        check("process keys", sorted(report["processes"][0].keys()),
              sorted(final["processes"][0].keys()))
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def check_metrics(text, what):
    out = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                         capture_output=True)
    check_true(f"promtool check metrics ({what})", out.returncode == 0,
               (out.stdout + out.stderr).decode()[:2000])


def test_no_trace(tmp):
    spool = os.path.join(tmp, "tmp")
    os.mkdir(spool)
    out = os.path.join(tmp, "out")
    os.mkdir(out)
    s = Session(out, mode="churn", extra=["--no-trace"], env={"TMPDIR": spool})
    try:
        # Let the trace grow well past the first 64 KiB unit (kept).
        deadline = time.time() + HANG_SECONDS
        read = 0
        while time.time() < deadline and read < (1 << 20):
            read = metric(s.metrics(), "heapsight_trace_read_bytes_total") or 0
            time.sleep(0.2)
        check_true("trace grew", read >= (1 << 20), f"only {read} bytes read")
        hst = [os.path.join(d, f) for d, _, fs in os.walk(spool) for f in fs if f.endswith(".hst")]
        check("one spooled trace", len(hst), 1)
        if hst:
            # Every whole 64 KiB unit read (but the first) is given back
            # before the scrape that counted it is answered (one thread
            # polls, releases, then serves: live_server.h), however far
            # the reading lags behind the writer; the file keeps its size.
            # 64 KiB more of slack: file system blocks at the edges.
            st = os.stat(hst[0])
            released = st.st_size - st.st_blocks * 512
            want = (read // (64 << 10) - 1) * (64 << 10) - (64 << 10)
            check_true("read bytes given back", released >= want > (512 << 10),
                       f"{st.st_blocks * 512} bytes on disk for a {st.st_size}-byte trace "
                       f"of which {read} were read: {released} given back, want {want}")
        status, _ = s.get("/debug/pprof/heap")
        check("--no-trace heap status", status, 200)
        open(os.path.join(out, "stop"), "w").close()
        check("--no-trace status", s.finish(), 0)
        check("nothing left in the spool", os.listdir(spool), [])
        check("no trace in -o", [f for f in os.listdir(out) if f.endswith(".hst")], [])
        check_true("streamed message", any("not kept: --no-trace" in l for l in s.stderr),
                   "".join(s.stderr))
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def test_killed(tmp):
    s = Session(tmp, serve=os.path.join(tmp, "serve.sock"))
    try:
        # A unix socket: curl talks to it.
        deadline = time.time() + PHASE_TIMEOUT
        pid = None
        while time.time() < deadline and pid is None:
            out = subprocess.run(["curl", "-sS", "--unix-socket", s.addr,
                                  "http://localhost/metrics"], capture_output=True)
            m = re.search(r'heapsight_markers_total\{pid="(\d+)".*\} 1$', out.stdout.decode(), re.M)
            pid = int(m.group(1)) if m else None
            time.sleep(0.1)
        check_true("phase 1 over the unix socket", pid is not None)
        check("socket: owner only", os.stat(s.addr).st_mode & 0o077, 0)
        if pid:
            os.kill(pid, signal.SIGKILL)
        check("record status after SIGKILL", s.finish(), 128 + signal.SIGKILL)
        check_true("socket removed", not os.path.exists(s.addr))
        traces = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".hst")]
        check("one trace", len(traces), 1)
        if traces:
            out = subprocess.run([HEAPSIGHT, "pprof", "-o", os.path.join(tmp, "k.pb.gz"),
                                  traces[0]], capture_output=True)
            # Exit status 4 (docs/cli.md): the profile is written, and the
            # trace of a killed program is read as cut short.
            check("pprof of the killed trace", out.returncode, 4)
            prof = pprof_raw(os.path.join(tmp, "k.pb.gz"))
            check("killed PhaseOneAlloc", values(prof, "PhaseOneAlloc")[:2], (100, 1000000))
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def test_rotate(tmp):
    """--rotate-size: segments that each read alone; the last one has the leaks."""
    out = os.path.join(tmp, "out")
    os.mkdir(out)
    spool = os.path.join(tmp, "tmp")
    os.mkdir(spool)
    env = dict(os.environ, TMPDIR=spool)
    rec = subprocess.Popen([HEAPSIGHT, "record", "--rotate-size=64K", "--rotate-keep=4", "-o", out,
                            "--", PROGRAM, tmp, "churn"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.time() + HANG_SECONDS
        while time.time() < deadline and \
                max([int(f.split(".")[-2]) for f in os.listdir(out)] or [0]) < 6:
            time.sleep(0.2)
        open(os.path.join(tmp, "stop"), "w").close()
        _, err = rec.communicate(timeout=60)
        err = err.decode()
        check("rotate status", rec.returncode, 0)
        wrote = re.findall(r"wrote (\S+)", err)
        numbers = sorted(int(re.search(r"\.(\d+)\.hst$", w).group(1)) for w in wrote)
        check_true("at least 6 segments made", numbers and numbers[-1] >= 6, err)
        segments = sorted(os.listdir(out), key=lambda f: int(f.split(".")[-2]))
        check("--rotate-keep=4 keeps 4", len(segments), 4)
        check("the kept are the newest", [int(f.split(".")[-2]) for f in segments], numbers[-4:])
        for f in segments:
            r = subprocess.run([HEAPSIGHT, "report", os.path.join(out, f)], capture_output=True)
            text = r.stdout.decode() + r.stderr.decode()
            # Every segment is complete: the earlier ones end with kEnd
            # (kRotated), the last with the process's own (trace_rotator.h).
            check(f"report {f}", r.returncode, 0)
            check_true(f"{f}: not cut short", "CUT SHORT" not in text and "cut short" not in text,
                       text[:1500])
            check_true(f"{f}: symbolized", "Churn" in text, text[:1500])
            check_true(f"{f}: every free matched", "never allocated" not in text, text[:1500])
            if f != segments[-1]:
                n = int(f.split(".")[-2])
                nxt = re.sub(r"\.\d+\.hst$", f".{n + 1}.hst", f)
                check_true(f"{f}: rotated",
                           f"segment closed by rotation; the run continues in {nxt}" in text,
                           text[:1500])
                check_true(f"{f}: no leaks", "not freed at exit" not in text
                           and "carried into the next segment (not leaks)" in text, text[:1500])
                r = subprocess.run([HEAPSIGHT, "leaks", "--format=json", os.path.join(out, f)],
                                   capture_output=True)
                check(f"leaks {f}", r.returncode, 0)
                j = json.loads(r.stdout)
                check(f"{f}: no leak groups", j["groups"], [])
                check(f"{f}: rotated in JSON", (j["processes"][0].get("rotated"),
                                                j["processes"][0].get("next_segment")), (True, nxt))
        last = os.path.join(out, segments[-1])
        r = subprocess.run([HEAPSIGHT, "leaks", "--format=json", last], capture_output=True)
        lost = [g for g in json.loads(r.stdout)["groups"] if g["kind"] == "definite"]
        check("last segment's definite leaks", [(g["blocks"], g["bytes"]) for g in lost],
              [(3, 999)])
        check_true("leak summary", "definitely lost: 999 bytes in 3 blocks" in err, err)
        check("spool emptied", [f for _, _, fs in os.walk(spool) for f in fs], [])
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()


def test_freshness(tmp, extra=()):
    options = subprocess.run([HEAPSIGHT, "options"], capture_output=True, text=True).stdout
    if "FLUSH_MS" not in options:
        print("test_freshness: skipped (this preload has no HEAPSIGHT_FLUSH_MS yet)")
        return
    s = Session(tmp, mode="fresh", extra=extra)
    try:
        wait_metric(s, "heapsight_markers_total", 1)
        check("phase 1 PhaseOneAlloc", values(pprof_raw(s.url("/debug/pprof/heap")), "PhaseOneAlloc"),
              (100, 1000000, 100, 1000000))
        before = metric(s.metrics(), "heapsight_allocated_bytes_total")
        open(os.path.join(tmp, "go2"), "w").close()
        done = os.path.join(tmp, "done2")
        deadline = time.time() + PHASE_TIMEOUT
        while not os.path.exists(done) and time.time() < deadline:
            time.sleep(0.01)
        # The program now waits for go3 with phase 2 in a partial chunk:
        # only HEAPSIGHT_FLUSH_MS brings it to the trace (without it, this
        # wait ends at the hang guard and the check fails).
        deadline = time.time() + PHASE_TIMEOUT
        grown = None
        while time.time() < deadline and grown != 204800:
            grown = metric(s.metrics(), "heapsight_allocated_bytes_total") - before
            time.sleep(0.05)
        check("phase 2 shown while the program is idle, no marker", grown, 204800)
        got = values(pprof_raw(s.url("/debug/pprof/heap")), "PhaseTwoAlloc")
        check("phase 2 profile, no marker", got, (50, 204800, 50, 204800))
        open(os.path.join(tmp, "go3"), "w").close()
        check("fresh status", s.finish(), 0)
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def test_freshness_address(tmp):
    """The same in address mode: the time merge (chunk_time_merge.h) holds
    the newest 2 s of events; the idle program's last chunk is applied from
    the clock (LiveProcess::AdvanceClock), not by a chunk that never comes."""
    test_freshness(tmp, extra=("--pairing=address",))


def test_handoff_address(tmp):
    """Address mode, two threads taking turns at the same addresses
    (handoff_program.cc: 32 turns of 37 blocks, every block freed). Paired
    in the order chunks reached the file (before the time merge), a
    hand-off's 4-bit count aliased and the served numbers stopped at 79 of
    the 2,368 allocations; in time order all are there. The shell waits on
    its stdin after the program, so the served numbers of the ended program
    can be read."""
    if HANDOFF is None:
        print("test_handoff_address: skipped (no handoff program given)")
        return
    rec = subprocess.Popen(
        [HEAPSIGHT, "record", "--serve", "127.0.0.1:0", "--pairing=address", "-o", tmp, "--",
         "/bin/sh", "-c", f"'{HANDOFF}' && {{ read x || true; }}"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp)
    try:
        addr = None
        for line in rec.stderr:
            m = re.search(r"serving (http://\S+)", line.decode(errors="replace"))
            if m:
                addr = m.group(1)
                break
        check_true("serving", addr is not None)
        threading.Thread(target=rec.stderr.read, daemon=True).start()

        def served():
            text = subprocess.run(["curl", "-sS", addr + "/metrics"], capture_output=True,
                                  timeout=60).stdout.decode()
            exe = {"exe": HANDOFF}
            return (metric(text, "heapsight_allocations_total", **exe),
                    metric(text, "heapsight_frees_total", **exe),
                    metric(text, "heapsight_live_blocks", **exe))

        deadline = time.time() + HANG_SECONDS
        got = served()
        while time.time() < deadline and got != (2368, 2368, 0):
            time.sleep(0.2)
            got = served()
        check("handoff served (allocations, frees, live blocks)", got, (2368, 2368, 0))
        rec.stdin.close()
        check("handoff record status", rec.wait(60), 0)
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()


def main():
    for test in (test_phases, test_freshness, test_freshness_address, test_handoff_address,
                 test_killed, test_no_trace, test_rotate):
        tmp = tempfile.mkdtemp(prefix="serve_test.")
        try:
            test(tmp)
        except Exception as e:  # a failed wait is a failure, not a crash
            FAILURES.append(f"{test.__name__}: {e!r}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for f in FAILURES:
        print("FAIL:", f)
    print("serve_test:", "FAILED" if FAILURES else "OK")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
