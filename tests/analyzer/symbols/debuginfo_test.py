#!/usr/bin/env python3
# tests/analyzer/symbols/debuginfo_test.py: separate debug info, end to end.
# A program built here with -g has its debug info split off
# (objcopy --only-keep-debug) and is stripped (--strip-all: no symbol table
# either), then recorded under the real preload. `heapsight leaks --format
# json` must name its leaking function:
#  - not at all without the debug file: the frames have no function, and
#    "symbols" counts the addresses as no_debug_info;
#  - with the debug file under a debug directory by build id
#    (HEAPSIGHT_DEBUGINFO_PATH=<dir>, <dir>/.build-id/xx/yyyy.debug);
#  - from a debuginfod server (DEBUGINFOD_URLS; a local HTTP server in the
#    debuginfod layout /buildid/<id>/debuginfo), which was asked for it;
#  - and with no server configured, libdebuginfod is not even loaded
#    (LD_DEBUG=files; analyzer/symbols/debuginfod_gate.h).
# And the analysis cache is keyed by the module's build id: touching the
# binary (same build id) keeps the cache, replacing it by a rebuild with a
# different build id replaces the cache file.
# Usage: debuginfo_test.py HEAPSIGHT
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

PROGRAM = r"""
#include <stdlib.h>
#include <string.h>
void* volatile sink;
__attribute__((noinline)) void debuginfo_test_leaker(void) {
  char* p = malloc(4242);
  memset(p, VARIANT, 4242);
  sink = p;
  sink = 0;  /* lost */
}
int main(void) { debuginfo_test_leaker(); return 0; }
"""

FAILURES = []


def check(what, ok):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        FAILURES.append(what)


def build(work, variant):
    src = os.path.join(work, "prog.c")
    with open(src, "w") as f:
        f.write(PROGRAM)
    out = os.path.join(work, "prog.v%d" % variant)
    subprocess.run(["cc", "-g", "-O1", "-DVARIANT=%d" % variant, src, "-o", out], check=True)
    return out


def build_id(path):
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", out).group(1)


def leaks(hs, trace, env, whole_frames=False):
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("HEAPSIGHT_") and not k.startswith("DEBUGINFOD_")}
    full.update(env)
    r = subprocess.run([hs, "leaks", "--format", "json", trace], capture_output=True, text=True,
                       env=full)
    doc = json.loads(r.stdout)
    group = [g for g in doc["groups"] if g["bytes"] == 4242]
    if whole_frames:
        return group[0]["frames"] if group else [], doc["symbols"]
    functions = [f["function"] for f in group[0]["frames"]] if group else []
    return functions, doc["symbols"]


def main():
    hs = sys.argv[1]
    work = tempfile.mkdtemp(prefix="heapsight-debuginfo-")
    try:
        # Apart: elfutils also looks for <binary>.debug next to the binary.
        os.mkdir(os.path.join(work, "bin"))
        prog = os.path.join(work, "bin", "prog")
        shutil.copy(build(work, 1), prog)
        bid = build_id(prog)
        debug = os.path.join(work, "split.debug")
        subprocess.run(["objcopy", "--only-keep-debug", prog, debug], check=True)
        subprocess.run(["objcopy", "--strip-all", prog], check=True)
        check("the stripped binary keeps its build id", build_id(prog) == bid)
        rec = os.path.join(work, "rec")
        os.mkdir(rec)
        subprocess.run([hs, "record", "-q", "-o", rec, "--", prog], check=True)
        trace = os.path.join(rec, [f for f in os.listdir(rec) if f.endswith(".hst")][0])

        empty = os.path.join(work, "empty")
        os.mkdir(empty)
        no_cache = {"HEAPSIGHT_NO_CACHE": "1"}
        fns, sym = leaks(hs, trace, dict(no_cache, HEAPSIGHT_DEBUGINFO_PATH=empty))
        check("without debug info the leak is found but unnamed: %s" % fns,
              fns != [] and "debuginfo_test_leaker" not in fns)
        check("its addresses count as no_debug_info: %s" % sym,
              sym["no_debug_info"] >= 1 and sym["unsymbolized"] >= sym["no_debug_info"])

        # No server configured: libdwfl would still load libdebuginfod (and
        # libcurl, GnuTLS, ...) on that miss; heapsight's gate declines it.
        quiet = {k: v for k, v in os.environ.items()
                 if not k.startswith("HEAPSIGHT_") and not k.startswith("DEBUGINFOD_")}
        quiet.update(no_cache, HEAPSIGHT_DEBUGINFO_PATH=empty, LD_DEBUG="files")
        r = subprocess.run([hs, "leaks", trace], capture_output=True, text=True, env=quiet)
        check("without DEBUGINFOD_URLS libdebuginfod is not loaded",
              "libdebuginfod" not in r.stderr and "libcurl" not in r.stderr)

        dbgdir = os.path.join(work, "debug")
        os.makedirs(os.path.join(dbgdir, ".build-id", bid[:2]))
        shutil.copy(debug, os.path.join(dbgdir, ".build-id", bid[:2], bid[2:] + ".debug"))
        fns2, sym2 = leaks(hs, trace, dict(no_cache, HEAPSIGHT_DEBUGINFO_PATH=dbgdir))
        check("by build id: the leak's frame is named: %s" % fns2,
              fns2[:1] == ["debuginfo_test_leaker"])
        check("fewer addresses lack debug info: %s" % sym2,
              sym2["no_debug_info"] < sym["no_debug_info"])

        # Compressed debug sections (objcopy --compress-debug-sections, as
        # Debian's debug packages ship them) are inflated by heapsight
        # (analyzer/symbols/inflated_debug_file.h), zlib and zstd alike
        # (libdw 0.188 reads no zstd): the same frames, file and line included.
        plain_frames, _ = leaks(hs, trace, dict(no_cache, HEAPSIGHT_DEBUGINFO_PATH=dbgdir),
                                whole_frames=True)
        check("the uncompressed debug file gives the leaker's file and line: %s" % plain_frames[:1],
              plain_frames[:1] != [] and plain_frames[0].get("file", "").endswith("prog.c")
              and plain_frames[0].get("line", 0) > 0)
        for how in ["zlib", "zstd"]:
            zdir = os.path.join(work, "debug-" + how)
            os.makedirs(os.path.join(zdir, ".build-id", bid[:2]))
            zdebug = os.path.join(zdir, ".build-id", bid[:2], bid[2:] + ".debug")
            subprocess.run(["objcopy", "--compress-debug-sections=" + how, debug, zdebug],
                           check=True)
            sections = subprocess.run(["readelf", "-SW", zdebug], capture_output=True,
                                      text=True).stdout
            check("%s: objcopy compressed the DWARF" % how,
                  re.search(r"\.debug_info .* C ", sections) is not None)
            zframes, _ = leaks(hs, trace, dict(no_cache, HEAPSIGHT_DEBUGINFO_PATH=zdir),
                               whole_frames=True)
            check("%s: the same frames as uncompressed: %s" % (how, zframes[:1]),
                  zframes == plain_frames)

        served = os.path.join(work, "served")
        os.makedirs(os.path.join(served, "buildid", bid))
        shutil.copy(debug, os.path.join(served, "buildid", bid, "debuginfo"))
        asked = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=served, **kw)

            def log_message(self, fmt, *args):
                asked.append(self.path)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = "http://127.0.0.1:%d" % server.server_address[1]
            fns3, _ = leaks(hs, trace, dict(no_cache, HEAPSIGHT_DEBUGINFO_PATH=empty,
                                           DEBUGINFOD_URLS=url,
                                           DEBUGINFOD_CACHE_PATH=os.path.join(work, "dcache")))
        finally:
            server.shutdown()
        check("debuginfod was asked for the debug info: %s" % asked,
              any(p.startswith("/buildid/%s/debuginfo" % bid) for p in asked))
        check("from debuginfod: the leak's frame is named: %s" % fns3,
              fns3[:1] == ["debuginfo_test_leaker"])

        # The analysis cache, keyed by build id.
        env = {"HEAPSIGHT_DEBUGINFO_PATH": dbgdir}
        leaks(hs, trace, env)
        caches = [f for f in os.listdir(rec) if f.endswith(".cache")]
        check("a cache file was written", len(caches) == 1)
        cache = os.path.join(rec, caches[0]) if caches else ""
        ino = os.stat(cache).st_ino if cache else 0
        os.utime(prog, (1, 1))  # touched: another mtime, the same build id
        leaks(hs, trace, env)
        check("a touched binary with the same build id keeps the cache",
              cache and os.stat(cache).st_ino == ino)
        shutil.copy(build(work, 2), prog)  # rebuilt: another build id
        check("the rebuild has another build id", build_id(prog) != bid)
        leaks(hs, trace, env)
        check("a rebuilt binary with another build id replaces the cache",
              cache and os.path.exists(cache) and os.stat(cache).st_ino != ino)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if FAILURES:
        print("%d failure(s)" % len(FAILURES))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
