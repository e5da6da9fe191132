#!/usr/bin/env python3
"""tests/cli/manual_test.py: the man pages, the bash completion and the
typo suggestion (cli/manual.h), checked as a user meets them:

- `meson install --destdir` into a temporary directory installs
  man/man1/heapsight.1 and one heapsight-<command>.1 per visible subcommand
  of `heapsight --help` (no more, no fewer), and
  share/bash-completion/completions/heapsight.bash;
- every page renders with man(1) without warnings, and each subcommand's
  page lists every long option its --help lists;
- the zsh completion (share/zsh/site-functions/_heapsight) parses
  (zsh -n) and offers every subcommand and each one's options;
- the completion, loaded into a real bash, completes subcommands and the
  options of the subcommand on the line;
- `heapsight reprot` exits 2 and suggests `report`.
Usage: manual_test.py BUILD_DIR HEAPSIGHT
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

build_dir, heapsight = sys.argv[1], sys.argv[2]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


# The visible subcommands, as --help lists them.
help_text = run([heapsight, "--help"]).stdout
subs = re.findall(r"^  (\w[\w-]*)\s{2,}", help_text.split("Subcommands:")[1], re.M)
check(len(subs) >= 10 and "report" in subs and "__generate-manual" not in subs,
      "subcommands from --help: %s" % subs)

with tempfile.TemporaryDirectory() as dest:
    meson = shutil.which("meson")
    r = run([meson, "install", "-C", build_dir, "--no-rebuild", "--destdir", dest, "--quiet"])
    check(r.returncode == 0, "meson install: " + r.stderr[-2000:])
    prefix = run([meson, "introspect", build_dir, "--buildoptions"]).stdout
    pages, completion, zsh_completion = {}, None, None
    for root, _, files in os.walk(dest):
        for f in files:
            if root.endswith("man1") and f.startswith("heapsight"):
                pages[f] = os.path.join(root, f)
            if root.endswith("bash-completion/completions") and f == "heapsight.bash":
                completion = os.path.join(root, f)
            if root.endswith("zsh/site-functions") and f == "_heapsight":
                zsh_completion = os.path.join(root, f)
    want = {"heapsight.1"} | {"heapsight-%s.1" % s for s in subs}
    check(set(pages) == want, "installed pages %s, want %s" % (sorted(pages), sorted(want)))
    for name, path in sorted(pages.items()):
        r = run(["man", "--warnings", "-l", path], env=dict(os.environ, MANWIDTH="100"))
        check(r.returncode == 0 and "NAME" in r.stdout and not r.stderr.strip(),
              "%s renders without warnings: %s" % (name, r.stderr[:500]))
        if name == "heapsight.1":
            for s in subs:
                check("heapsight-%s(1)" % s in r.stdout, "heapsight(1) lists %s" % s)
            continue
        sub = name[len("heapsight-"):-2]
        sub_help = run([heapsight, sub, "--help"]).stdout
        for opt in set(re.findall(r"(--[a-z][a-z0-9-]+)", sub_help.split("Options:")[-1])):
            check(opt in r.stdout.replace("\u2010", "-"), "%s lists %s" % (name, opt))
    check(completion is not None, "bash completion installed")
    if completion:
        def complete(words):
            script = ("source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_heapsight\n"
                      "printf '%%s\\n' \"${COMPREPLY[@]}\"\n") % (
                completion, " ".join("'%s'" % w for w in words), len(words) - 1)
            return run(["bash", "--norc", "-c", script]).stdout.split()
        check(complete(["heapsight", "re"]) == ["record", "report"],
              "complete 'heapsight re': %s" % complete(["heapsight", "re"]))
        got = complete(["heapsight", "leaks", "--leak-e"])
        check(got == ["--leak-exitcode"], "complete 'leaks --leak-e': %s" % got)
        got = complete(["heapsight", "pprof", "--fr"])
        check("--frames" in got or got == [], "complete 'pprof --fr': %s" % got)

    # zsh (scripts/debian-packages.txt): the file parses, and its function,
    # with compsys's _describe and _arguments stubbed to print what they
    # are given, offers every subcommand, then the chosen one's options.
    check(zsh_completion is not None, "zsh completion installed in share/zsh/site-functions")
    zsh = shutil.which("zsh")
    check(zsh is not None, "zsh is installed (scripts/debian-packages.txt)")
    if zsh_completion and zsh:
        r = run([zsh, "-n", zsh_completion])
        check(r.returncode == 0 and not r.stderr, "zsh -n _heapsight: " + r.stderr)
        script = ("_describe() { print -rl -- \"${(@P)4}\" }\n"
                  "_arguments() { print -rl -- \"$@\" }\n"
                  "source %s\n"
                  "words=(heapsight le); CURRENT=2; _heapsight\n"
                  "print -- ----\n"
                  "words=(heapsight leaks --leak-e); CURRENT=3; _heapsight\n") % zsh_completion
        r = run([zsh, "-f", "-c", script])
        described, _, arguments = r.stdout.partition("----\n")
        names = [line.split(":", 1)[0] for line in described.split("\n") if line]
        check(names == subs, "zsh: subcommands %s, want %s" % (names, subs))
        check("(--leak-exitcode)--leak-exitcode=[" in arguments and "--heap-limit" not in arguments,
              "zsh: leaks's options: %s" % arguments[:600])
        leaks_help = run([heapsight, "leaks", "--help"]).stdout.split("Options:")[-1]
        # The options themselves, not those named in descriptions.
        for opt in set(re.findall(r"^  +(?:-\w, )?(--[a-z][a-z0-9-]+)", leaks_help, re.M)):
            check(opt + "[" in arguments or opt + "=[" in arguments, "zsh: leaks offers %s" % opt)

r = run([heapsight, "reprot", "x.hst"])
check(r.returncode == 2 and "Did you mean 'report'?" in r.stderr,
      "typo: rc %d, %s" % (r.returncode, r.stderr))
r = run([heapsight, "xyzzy"])
check(r.returncode == 2 and "not a heapsight command" in r.stderr and "Did you mean" not in r.stderr,
      "no close command: rc %d, %s" % (r.returncode, r.stderr))
r = run([heapsight, "--version"])
check(r.returncode == 0, "--version still works")

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
