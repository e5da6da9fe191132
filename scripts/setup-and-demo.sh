#!/usr/bin/env bash
# scripts/setup-and-demo.sh: README command 1. On a fresh Debian 12 machine,
# as root, from the repository root: installs exactly the Debian packages of
# scripts/debian-packages.txt, configures and builds heapsight in build/, then
# traces example programs and shows what heapsight found: the leak summary and
# leak report of the leak lesson (examples/06_memory_leaks), the profile summary
# and `go tool pprof -top` of the profiling lesson (examples/01_memory_profiling).
#
# Re-running it is fine: packages already installed are kept, an existing
# build/ is reused. The demo's traces and profile go to build/demo/.
#
# Options (for development; the README runs it without any):
#   --build-dir DIR   build in DIR instead of build/
#   --jobs N          ninja -j N
#   --skip-packages   do not run apt-get
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
jobs=()
install_packages=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --jobs) jobs=(-j "$2"); shift 2 ;;
    --skip-packages) install_packages=0; shift ;;
    *) echo "usage: $0 [--build-dir DIR] [--jobs N] [--skip-packages]" >&2; exit 2 ;;
  esac
done

step() { printf '\n==> %s\n' "$*"; }

if [ "$install_packages" = 1 ]; then
  step "Installing Debian packages (scripts/debian-packages.txt)"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  mapfile -t packages < <(scripts/debian-packages)
  $SUDO apt-get update
  $SUDO apt-get install -y "${packages[@]}"
fi

step "Configuring and building ($build/)"
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build"
fi
ninja -C "$build" "${jobs[@]}"

heapsight=$build/cli/heapsight
demo_dir=$build/demo
rm -rf "$demo_dir"
mkdir -p "$demo_dir"

# The programs to trace: the examples' leak lesson (6) for the leak report
# and its profiling lesson (1) for the profile; without examples, the small
# leaky program of the record tests for both.
leaky=("$build/examples/06_memory_leaks" costly)
profiled=("$build/examples/01_memory_profiling" costly)
if [ ! -x "${leaky[0]}" ] || [ ! -x "${profiled[0]}" ]; then
  leaky=("$build/tests/cli/record/record_leaky_program")
  profiled=("${leaky[@]}")
fi

step "Tracing: heapsight record -- ${leaky[*]}"
"$heapsight" record -o "$demo_dir/leaks.%e.%p.hst" -- "${leaky[@]}"
leak_traces=("$demo_dir"/leaks.*.hst)

step "Leak report: heapsight leaks ${leak_traces[0]}"
"$heapsight" leaks "${leak_traces[0]}"

step "Tracing: heapsight record -- ${profiled[*]}"
"$heapsight" record -o "$demo_dir/profile.%e.%p.hst" -- "${profiled[@]}"
profile_traces=("$demo_dir"/profile.*.hst)

step "Profile summary: heapsight report ${profile_traces[*]}"
"$heapsight" report "${profile_traces[@]}"

if command -v go >/dev/null 2>&1; then
  step "pprof: heapsight pprof ${profile_traces[0]} -o $demo_dir/profile.pb.gz; go tool pprof -top"
  "$heapsight" pprof "${profile_traces[0]}" -o "$demo_dir/profile.pb.gz"
  go tool pprof -top -sample_index=alloc_space "$demo_dir/profile.pb.gz"
fi

step "HTML report: heapsight html ${profile_traces[0]} -o $demo_dir/report.html"
"$heapsight" html "${profile_traces[0]}" -o "$demo_dir/report.html"
echo "wrote $demo_dir/report.html (open it in a browser)"

step "Done. Traces, profile and report are in $demo_dir/"
