#!/bin/sh
# scripts/update-html-screenshot.sh [BUILD_DIR]: copies the screenshots of
# the README demo's HTML page (examples/01_memory_profiling, the page
# scripts/setup-and-demo.sh writes), which the browser test
# (tests/browser/html_page_test.py, `meson test html_page`) takes, to
# docs/images/ where docs/html-report.md shows them.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-dev}
for name in html_page_demo html_page_demo_views; do
  src="$build/tests/browser/$name.png"
  if [ ! -f "$src" ]; then
    echo "update-html-screenshot: $src not found: run 'meson test -C $build html_page' first" >&2
    exit 1
  fi
done
cp "$build/tests/browser/html_page_demo.png" "$root/docs/images/html-report.png"
cp "$build/tests/browser/html_page_demo_views.png" "$root/docs/images/html-report-views.png"
echo "copied to $root/docs/images/html-report.png and html-report-views.png"
