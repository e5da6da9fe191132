#!/usr/bin/env python3
# tests/analyzer/cache/cache_cli_test.py: the analysis cache end to end
# (analyzer/cache/analysis_cache.h), with the real command on traces of real
# programs recorded under the real preload.
#  - Every command's output (report, leaks text and JSON, growth, diff,
#    pprof at the end and at the peak, collapse, flamegraph, html) is byte
#    for byte the same with --no-cache, with a cold cache and a warm one, on
#    lesson programs and on a fork/exec family;
#  - the warm command really read the cache: the cache file is not
#    rewritten (same inode), and it is 0600;
#  - rewriting the trace, or rebuilding a shared library the program
#    loaded (built here), makes the next command analyze afresh (the cache
#    file is replaced); HEAPSIGHT_NO_CACHE=1 and --no-cache write none.
# Usage: cache_cli_test.py HEAPSIGHT EXAMPLES_DIR
import os
import shutil
import stat
import subprocess
import sys
import tempfile

FAILURES = []


def check(what, ok):
    if not ok:
        FAILURES.append(what)
        print("FAIL:", what)


def run(args, env=None, cwd=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HEAPSIGHT_")}
    full_env.update(env or {})
    r = subprocess.run(args, capture_output=True, env=full_env, cwd=cwd)
    if r.returncode not in (0,):
        raise RuntimeError(f"{args} exited {r.returncode}: {r.stderr.decode(errors='replace')}")
    return r


def record(hs, work, tag, argv, env=None):
    out = os.path.join(work, tag)
    os.mkdir(out)
    r = subprocess.run([hs, "record", "-q", "-o", out, "--"] + argv, capture_output=True,
                       stdin=subprocess.DEVNULL, env=dict(os.environ, **(env or {})))
    traces = sorted(os.path.join(out, f) for f in os.listdir(out) if f.endswith(".hst"))
    if not traces:
        raise RuntimeError(f"{argv}: no trace: {r.stderr}")
    return traces


def cache_files(traces):
    out = []
    for t in traces:
        d = os.path.dirname(t)
        out += [os.path.join(d, f) for f in sorted(os.listdir(d))
                if f.startswith(os.path.basename(t) + ".") and f.endswith(".cache")]
    return out


def remove_caches(traces):
    for f in cache_files(traces):
        os.unlink(f)


# Each command: (name, argv builder taking the traces and an output path or
# None when the result is stdout).
def commands(hs, work):
    out = lambda name: os.path.join(work, "out." + name)
    return [
        ("report", lambda t: [hs, "report"] + t, None),
        ("leaks", lambda t: [hs, "leaks"] + t, None),
        ("leaks-json", lambda t: [hs, "leaks", "--format", "json"] + t, None),
        ("growth", lambda t: [hs, "growth"] + t, None),
        ("growth-json", lambda t: [hs, "growth", "--format", "json"] + t, None),
        ("diff", lambda t: [hs, "diff", t[0], t[-1]], None),
        ("pprof", lambda t: [hs, "pprof", "-o", out("pb.gz")] + t, out("pb.gz")),
        ("pprof-peak", lambda t: [hs, "pprof", "--at", "peak", "-o", out("peak.pb.gz")] + t,
         out("peak.pb.gz")),
        ("collapse", lambda t: [hs, "collapse"] + t, None),
        ("flamegraph", lambda t: [hs, "flamegraph", "-o", out("svg")] + t, out("svg")),
        ("html", lambda t: [hs, "html", "-o", out("html")] + t, out("html")),
    ]


def output_of(argv, path, env=None):
    r = run(argv, env=env)
    if path is None:
        return r.stdout
    with open(path, "rb") as f:
        return f.read()


def check_identical(hs, work, tag, traces):
    for name, build, path in commands(hs, work):
        argv = build(traces)
        plain = output_of(argv[:2] + ["--no-cache"] + argv[2:], path)
        check(f"{tag} {name}: --no-cache writes no cache file", cache_files(traces) == [])
        cold = output_of(argv, path)
        files = cache_files(traces)
        used = {traces[0], traces[-1]} if name == "diff" else set(traces)
        check(f"{tag} {name}: a cold command writes a cache per trace", len(files) >= len(used))
        inodes = {f: os.stat(f).st_ino for f in files}
        for f in files:
            check(f"{tag} {name}: {f} is 0600", stat.S_IMODE(os.stat(f).st_mode) == 0o600)
        warm = output_of(argv, path)
        check(f"{tag} {name}: warm cache did not rewrite the cache",
              {f: os.stat(f).st_ino for f in cache_files(traces)} == inodes)
        check(f"{tag} {name}: cold output == --no-cache output", cold == plain)
        check(f"{tag} {name}: warm output == --no-cache output", warm == plain)
        remove_caches(traces)


def check_rewritten_trace(hs, work, traces):
    trace = traces[0]
    run([hs, "report", trace])
    (cache,) = cache_files([trace])
    before = os.stat(cache).st_ino
    # The same bytes written again: a new mtime, so the next command must
    # not trust the cache.
    with open(trace, "rb") as f:
        data = f.read()
    os.unlink(trace)
    with open(trace, "wb") as f:
        f.write(data)
    os.chmod(trace, 0o600)
    run([hs, "report", trace])
    check("a rewritten trace is analyzed afresh (cache replaced)", os.stat(cache).st_ino != before)
    after = os.stat(cache).st_ino
    run([hs, "report", trace])
    check("then the new cache answers", os.stat(cache).st_ino == after)
    # Corrupted: the command still answers the same, and replaces the file.
    expected = run([hs, "report", "--no-cache", trace]).stdout
    for cut in (0, 5, 12, os.path.getsize(cache) // 2, os.path.getsize(cache) - 1):
        with open(cache, "r+b") as f:
            f.truncate(cut)
        check(f"report with a cache truncated to {cut} bytes", run([hs, "report", trace]).stdout == expected)
        check(f"a cache truncated to {cut} bytes is replaced", os.path.getsize(cache) > cut)


def check_env_disables(hs, traces):
    remove_caches(traces)
    run([hs, "report"] + traces, env={"HEAPSIGHT_NO_CACHE": "1"})
    check("HEAPSIGHT_NO_CACHE=1 writes no cache", cache_files(traces) == [])


LIB_V1 = r"""
#include <stdlib.h>
void* lib_alloc(size_t n) { return malloc(n); }
"""
LIB_V2 = r"""
#include <stdlib.h>
static volatile int pad;
void* lib_alloc(size_t n) { pad++; return calloc(1, n); }
"""
MAIN = r"""
#include <stdlib.h>
void* lib_alloc(size_t n);
int main(void) {
  for (int i = 0; i < 100; ++i) free(lib_alloc(64));
  lib_alloc(1000);  /* not freed */
  return 0;
}
"""


def check_rebuilt_library(hs, work):
    cc = shutil.which("cc") or shutil.which("gcc")
    d = os.path.join(work, "lib")
    os.mkdir(d)
    for name, text in (("lib1.c", LIB_V1), ("lib2.c", LIB_V2), ("main.c", MAIN)):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    lib = os.path.join(d, "libcachetest.so")
    subprocess.run([cc, "-shared", "-fPIC", "-g", "-o", lib, os.path.join(d, "lib1.c")], check=True)
    prog = os.path.join(d, "prog")
    subprocess.run([cc, "-g", "-o", prog, os.path.join(d, "main.c"), "-L" + d, "-lcachetest",
                    "-Wl,-rpath," + d], check=True)
    (trace,) = record(hs, work, "libtrace", [prog])
    run([hs, "report", trace])
    (cache,) = cache_files([trace])
    first = os.stat(cache).st_ino
    run([hs, "leaks", trace])
    check("the library unchanged: the cache answers", os.stat(cache).st_ino == first)
    subprocess.run([cc, "-shared", "-fPIC", "-g", "-o", lib, os.path.join(d, "lib2.c")],
                   check=True)
    expected = run([hs, "leaks", "--no-cache", trace]).stdout
    got = run([hs, "leaks", trace]).stdout
    check("a rebuilt library invalidates the cache (file replaced)", os.stat(cache).st_ino != first)
    check("and the output is the fresh analysis'", got == expected)


def main():
    hs, examples = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="cache_cli_test.") as work:
        for name in ("06_memory_leaks", "04_vector_growth"):
            traces = record(hs, work, name, [os.path.join(examples, name)])
            check_identical(hs, work, name, traces)
        family = record(hs, work, "family", ["/bin/sh", "-c",
                                             f"{examples}/06_memory_leaks; {examples}/01_memory_profiling"])
        check(f"the family has several traces ({len(family)})", len(family) >= 3)
        check_identical(hs, work, "family", family)
        check_env_disables(hs, family)
        check_rewritten_trace(hs, work, record(hs, work, "rewrite", [os.path.join(examples, "06_memory_leaks")]))
        check_rebuilt_library(hs, work)
    if FAILURES:
        print(f"{len(FAILURES)} failure(s)")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
