// bench/decode_bench.cc: the decode workers' cost per event, alone (issue
// 16, docs/performance.md "Stop 28: the decode workers"). Not run by any
// test.
//
// Reads every chunk of a trace once (decompressed, into memory), then runs
// analyzer::DecodeChunk over all of them `rounds` times on one thread, into
// one recycled DecodedChunk as a decode worker does, and prints the events,
// the decoding time per event of the best round (the checksum
// pass over the events aside) and a checksum of the events (the
// same for every version of the decoder that yields the same events). Under
// `valgrind --tool=callgrind` (rounds = 1) the instructions per event are
// the decoders' alone, without the zstd and the analysis around them.
//
// Usage: decode_bench TRACE.hst [rounds (default 5)]
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "analyzer/model/chunk_events.h"
#include "format/chunk_decoder.h"
#include "format/trace_reader.h"

using heapsight::analyzer::DecodeChunk;
using heapsight::analyzer::DecodedChunk;
using heapsight::analyzer::Event;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TRACE.hst [rounds]\n", argv[0]);
    return 2;
  }
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  auto reader = heapsight::format::TraceReader::Open(argv[1]);
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    return 1;
  }
  const bool compact = heapsight::format::HasCompactFrees((*reader)->header());
  std::vector<std::vector<uint8_t>> chunks;
  std::vector<uint8_t> chunk;
  while ((*reader)->NextChunk(&chunk)) chunks.push_back(chunk);
  uint64_t bytes = 0;
  for (const auto& c : chunks) bytes += c.size();

  DecodedChunk out;
  double best = 1e30;
  uint64_t events = 0, sum = 0;
  for (int round = 0; round < rounds; ++round) {
    events = 0;
    sum = 0;
    double s = 0;
    for (const auto& c : chunks) {
      auto start = std::chrono::steady_clock::now();
      DecodeChunk(c.data(), c.size(), &out, compact, 1);
      s += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      events += out.events.size();
      // A checksum that reads every event (and keeps the decoding alive).
      for (const Event& e : out.events) {
        sum = sum * 31 + (e.time_us ^ e.id ^ e.old_id ^ e.size ^ e.stack ^ e.value ^
                          static_cast<uint64_t>(e.tag) ^ (uint64_t{e.code} << 8) ^
                          (static_cast<uint64_t>(e.api) << 16) ^ (uint64_t{e.stream} << 24));
      }
      if (!out.error.empty()) std::fprintf(stderr, "chunk error: %s\n", out.error.c_str());
    }
    if (s < best) best = s;
  }
  std::printf("%zu chunks, %" PRIu64 " raw bytes, %" PRIu64 " events, best of %d: %.3f s,"
              " %.2f ns/event, checksum %016" PRIx64 "\n",
              chunks.size(), bytes, events, rounds, best, best * 1e9 / static_cast<double>(events),
              sum);
  return 0;
}
