#!/usr/bin/env bash
# scripts/fuzz-trace-reader.sh: fuzzes the trace reader and the whole
# analysis (tests/analyzer/analyzer_fuzz.cc) with libFuzzer and AddressSanitizer.
#
# Builds a clang tree with every library instrumented for coverage (without
# -fsanitize=fuzzer-no-link on the libraries, libFuzzer sees only the target
# file and mutates blindly), seeds it with uncompressed traces of the
# scenario programs (HEAPSIGHT_ZSTD_LEVEL=0, so mutations reach the records
# instead of breaking zstd frames), and runs for SECONDS (default 300).
# Needs clang and libclang-rt-14-dev, and a normal build in build/ (or
# $HEAPSIGHT_BUILD) for the preload and the scenario programs. Compact
# traces (format version 5) of real programs (perl, python3, sqlite3, git,
# whichever are installed) are seeds too. Findings land in
# build-fuzz/findings/. Builds run niced with at most 2 jobs.
#
# Usage: [HEAPSIGHT_BUILD=build-dev] scripts/fuzz-trace-reader.sh [SECONDS]
#
# Last runs (2026-12-06, compact15b, on the loaded 2-core VM): 663 s with
# max_len 256 KiB (1,553 inputs) and 422 s with max_len 64 KiB (3,387
# inputs), 1,085 s in all: no crash, no sanitizer report; 6,113 edges
# (cov), 22,654 features, 357 corpus inputs. Throughput is a few inputs per
# second: each input is analyzed whole and its modules (python, bash,
# libc) symbolized under ASan, and real-program seeds take 10-49 s each
# (libFuzzer's "slow-unit" files; 0.9-1.3 s in a normal build).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
build="${HEAPSIGHT_BUILD:-build}"

if [ ! -d build-fuzz ]; then
  CC=clang CXX=clang++ meson setup build-fuzz -Dbench=false -Db_sanitize=address \
    -Dcpp_args=-fsanitize=fuzzer-no-link
fi
nice ninja -j2 -C build-fuzz tests/analyzer/analyzer_fuzz
nice ninja -j2 -C "$build" preload/libheapsight.so tests/scenarios/stacks_program \
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
    LD_PRELOAD="$PWD/$build/preload/libheapsight.so" "$build/tests/scenarios/$program" \
    >/dev/null 2>&1 || true
done
# A sampled trace (header period, kFileFlagSampled) and a two-thread one that
# switched clocks (kFileFlagCoarseClock).
HEAPSIGHT_ZSTD_LEVEL=0 HEAPSIGHT_SAMPLE_BYTES=100000 \
  HEAPSIGHT_OUTPUT="$PWD/$seeds/sampling_program.%p.hst" \
  LD_PRELOAD="$PWD/$build/preload/libheapsight.so" "$build/tests/scenarios/sampling_program" \
  >/dev/null 2>&1 || true
HEAPSIGHT_ZSTD_LEVEL=0 HEAPSIGHT_OUTPUT="$PWD/$seeds/clock_program.%p.hst" \
  LD_PRELOAD="$PWD/$build/preload/libheapsight.so" "$build/tests/scenarios/clock_program" thread \
  >/dev/null 2>&1 || true
# Compact frees (HEAPSIGHT_COMPACT_FREES, format version 5): kFree and
# kRealloc rows that name stacks and sizes, kBlockClasses with stacks and
# sizes appended.
for program in api_program leak_classes_program; do
  HEAPSIGHT_ZSTD_LEVEL=0 HEAPSIGHT_COMPACT_FREES=1 \
    HEAPSIGHT_OUTPUT="$PWD/$seeds/compact_$program.%p.hst" \
    LD_PRELOAD="$PWD/$build/preload/libheapsight.so" "$build/tests/scenarios/$program" \
    >/dev/null 2>&1 || true
done
# Address frees (HEAPSIGHT_PAIRING=address, format version 6): rows with
# address deltas and order values, frees without ids, threads handing
# addresses to each other (the analyzer's pairing stage and its held
# events).
for program in api_program leak_classes_program; do
  HEAPSIGHT_ZSTD_LEVEL=0 HEAPSIGHT_PAIRING=address \
    HEAPSIGHT_OUTPUT="$PWD/$seeds/address_$program.%p.hst" \
    LD_PRELOAD="$PWD/$build/preload/libheapsight.so" "$build/tests/scenarios/$program" \
    >/dev/null 2>&1 || true
done
# Compact traces of real programs: their stacks, sizes and free orders are
# those the compact encoding was built for. HEAPSIGHT_FLUSH_MS=1 seals a
# chunk every millisecond, so a 250 KB head holds several whole blocks of
# the 512 KiB compact chunks, and python frees across two threads.
real_seed() {
  local name="$1"
  shift
  command -v "$1" >/dev/null || return 0
  HEAPSIGHT_ZSTD_LEVEL=0 HEAPSIGHT_COMPACT_FREES=1 HEAPSIGHT_FLUSH_MS=1 \
    HEAPSIGHT_OUTPUT="$PWD/$seeds/real_$name.%p.hst" \
    LD_PRELOAD="$PWD/$build/preload/libheapsight.so" "$@" >/dev/null 2>&1 || true
}
rm -f "$seeds"/real_*
real_seed perl perl -e 'my %h; $h{$_ % 97} .= "x" for 1..2000; print scalar(keys %h), "\n"'
# The interpreter itself, not a version manager's shim (a shell script that
# would leave a trace per helper process).
python=python3
[ -x /usr/bin/python3 ] && python=/usr/bin/python3
real_seed python "$python" -S -c 'd = {str(i): i for i in range(300)}; print(len(sorted(d)))'
PYTHONMALLOC=malloc real_seed python_threads "$python" -S -c 'import threading
d = {str(i): [i] for i in range(500)}
t = threading.Thread(target=lambda: sorted(d)); t.start(); t.join()
del d'
real_seed sqlite sqlite3 :memory: 'create table t(a); insert into t values (1),(2),(3);
select count(*) from t;'
real_seed git git --version
# libFuzzer's inputs are capped (max_len); a trace's head is still a trace
# (the reader reports it as cut short).
for trace in "$seeds"/*.hst; do head -c 250000 "$trace" > "$corpus/$(basename "$trace")"; done

cd build-fuzz/findings
exec ../tests/analyzer/analyzer_fuzz -max_len=262144 -rss_limit_mb=4096 \
  -max_total_time="$seconds" ../corpus
