// examples/01_memory_profiling.cc: lesson 1, memory profiling.
//
// Three allocation sites of clearly different weights, so that a profile
// ranks them: BuildIndex (64 MiB), ParseRequests (16 MiB), FormatLogLines
// (about 1 MiB). The improved version keeps the ranking but lets
// ParseRequests reuse one buffer instead of allocating per request.
//
//   costly:   BuildIndex 1024 x 64 KiB, ParseRequests 4096 x 4 KiB,
//             FormatLogLines 10000 x 100 B            (15120 mallocs)
//   improved: ParseRequests allocates one 4 KiB buffer (11025 mallocs)
// heapsight counts one more allocation in each: the index vector's reserve.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "example_util.h"

namespace {

constexpr int kIndexBlocks = 1024;
constexpr size_t kIndexBlockBytes = 64 * 1024;
constexpr int kRequests = 4096;
constexpr size_t kRequestBytes = 4096;
constexpr int kLogLines = 10000;
constexpr size_t kLogLineBytes = 100;

HS_NOINLINE void BuildIndex() {
  std::vector<char*> blocks;
  blocks.reserve(kIndexBlocks);  // one allocation of 8 KiB
  for (int i = 0; i < kIndexBlocks; ++i) {
    char* block = static_cast<char*>(std::malloc(kIndexBlockBytes));
    std::memset(block, i, kIndexBlockBytes);
    blocks.push_back(block);
  }
  for (char* block : blocks) std::free(block);
}

HS_NOINLINE void ParseRequests(examples::Mode mode) {
  char* shared = nullptr;
  if (mode == examples::Mode::kImproved) shared = static_cast<char*>(std::malloc(kRequestBytes));
  for (int i = 0; i < kRequests; ++i) {
    char* buf = shared != nullptr ? shared : static_cast<char*>(std::malloc(kRequestBytes));
    std::memset(buf, 'r', kRequestBytes);
    examples::KeepAlive(buf[i % kRequestBytes]);
    if (shared == nullptr) std::free(buf);
  }
  std::free(shared);
}

HS_NOINLINE void FormatLogLines() {
  for (int i = 0; i < kLogLines; ++i) {
    char* line = static_cast<char*>(std::malloc(kLogLineBytes));
    std::memset(line, 'l', kLogLineBytes);
    examples::KeepAlive(line[0]);
    std::free(line);
  }
}

}  // namespace

int main(int argc, char** argv) {
  examples::Mode mode;
  if (!examples::ParseMode(argc, argv, &mode)) return 2;
  BuildIndex();
  ParseRequests(mode);
  FormatLogLines();
  return 0;
}
