#!/usr/bin/env bash
# scripts/fuzz-trace-reader.sh: fuzzes the trace reader and the whole
# analysis (tests/analyzer/analyzer_fuzz.cc) with libFuzzer and AddressSanitizer.
#
# Builds a clang tree with every library instrumented for coverage (without
# -fsanitize=fuzzer-no-link on the libraries, libFuzzer sees only the target
# file and mutates blindly), seeds it with uncompressed traces of the
# scenario programs (HEAPSIGHT_ZSTD_LEVEL=0, so mutations reach the records
# instead of breaking zstd frames), and runs for SECONDS (default 300).
# Needs clang and libclang-rt-14-dev, and a normal build in build/ for the
# preload and the scenario programs. Findings land in build-fuzz/findings/.
#
# Usage: scripts/fuzz-trace-reader.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"

if [ ! -d build-fuzz ]; then
  CC=clang CXX=clang++ meson setup build-fuzz -Dbench=false -Db_sanitize=address \
    -Dcpp_args=-fsanitize=fuzzer-no-link
fi
ninja -C build-fuzz tests/analyzer/analyzer_fuzz
ninja -C build preload/libheapsight.so tests/scenarios/stacks_program \
  tests/scenarios/api_program tests/scenarios/badfree_program \
  tests/scenarios/exit_program tests/scenarios/leak_classes_program \
  tests/scenarios/unwind_cache_program_fp tests/scenarios/sampling_program \
  tests/scenarios/clock_program

seeds=build-fuzz/seeds
corpus=build-fuzz/corpus
mkdir -p "$seeds" "$corpus" build-fuzz/findings
for program in stacks_program api_program badfree_program exit_program leak_classes_program \
               unwind_cache_program_fp; do
  rm -f "$seeds/$program".*
  HEAPSIGHT_ZSTD_LEVEL=0 HEAPSIGHT_OUTPUT="$PWD/$seeds/$program.%p.hst" \
    LD_PRELOAD="$PWD/build/preload/libheapsight.so" "build/tests/scenarios/$program" \
    >/dev/null 2>&1 || true
done
# A sampled trace (header period, kFileFlagSampled) and a two-thread one that
# switched clocks (kFileFlagCoarseClock).
HEAPSIGHT_ZSTD_LEVEL=0 HEAPSIGHT_SAMPLE_BYTES=100000 \
  HEAPSIGHT_OUTPUT="$PWD/$seeds/sampling_program.%p.hst" \
  LD_PRELOAD="$PWD/build/preload/libheapsight.so" build/tests/scenarios/sampling_program \
  >/dev/null 2>&1 || true
HEAPSIGHT_ZSTD_LEVEL=0 HEAPSIGHT_OUTPUT="$PWD/$seeds/clock_program.%p.hst" \
  LD_PRELOAD="$PWD/build/preload/libheapsight.so" build/tests/scenarios/clock_program thread \
  >/dev/null 2>&1 || true
# Compact frees (HEAPSIGHT_COMPACT_FREES, format version 5): kFree and
# kRealloc rows that name stacks and sizes, kBlockClasses with stacks and
# sizes appended.
for program in api_program leak_classes_program; do
  HEAPSIGHT_ZSTD_LEVEL=0 HEAPSIGHT_COMPACT_FREES=1 \
    HEAPSIGHT_OUTPUT="$PWD/$seeds/compact_$program.%p.hst" \
    LD_PRELOAD="$PWD/build/preload/libheapsight.so" "build/tests/scenarios/$program" \
    >/dev/null 2>&1 || true
done
# libFuzzer's inputs are capped at 64 KiB; a trace's head is still a trace
# (the reader reports it as cut short).
for trace in "$seeds"/*.hst; do head -c 60000 "$trace" > "$corpus/$(basename "$trace")"; done

cd build-fuzz/findings
exec ../tests/analyzer/analyzer_fuzz -max_len=65536 -rss_limit_mb=4096 \
  -max_total_time="$seconds" ../corpus
