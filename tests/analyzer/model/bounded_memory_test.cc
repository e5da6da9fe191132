// tests/analyzer/model/bounded_memory_test.cc: the analyzer's memory is
// bounded by what is live, not by the trace's length. A child process
// analyzes a generated trace under an address-space limit (RLIMIT_AS): a
// long trace with few live blocks fits, a trace of the same length whose
// blocks all stay live does not (so the limit is tight enough to mean
// something).
#include <malloc.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "analyzer/model/live_set.h"
#include "analyzer/model/trace_model.h"
#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer {
namespace {

using format::Api;

constexpr uint32_t kThreads = 4;
constexpr uint64_t kAllocsPerThread = 1500000;  // 6 M allocations in all
// Headroom above the child's address space before the analysis: enough for
// the pipeline's thread stack, its batches, one chunk per thread and the
// live set of a few hundred blocks; below what keeping every allocation
// takes even in the paged live set's 8 bytes a block of different sizes
// (paged_live_set.h: about 50 MB for 6 M blocks allocated in counter order).
constexpr uint64_t kHeadroomBytes = 40ull << 20;
constexpr int kOutOfMemory = 5;  // the child's exit status on std::bad_alloc

// Writes a trace of kThreads x kAllocsPerThread allocations of 100 to 1096
// bytes from 16 stacks. With `free_all`, each thread keeps at most `live` blocks
// live (frees the oldest); otherwise nothing is freed.
std::string WriteTrace(const std::string& name, bool free_all, size_t live) {
  std::string path = ::testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".hst";
  testing::TestTraceWriter w(1, 0, 64 << 10);
  w.set_zstd(true);
  for (uint32_t t = 1; t <= kThreads; ++t) {
    for (uint64_t s = 1; s <= 16; ++s) w.StackNode(t, t * 100 + s, 0, 0x1000 * s);
  }
  std::vector<std::vector<uint64_t>> ids(kThreads + 1);
  std::vector<size_t> oldest(kThreads + 1, 0);
  for (uint64_t i = 0; i < kAllocsPerThread; ++i) {
    for (uint32_t t = 1; t <= kThreads; ++t) {
      w.set_base_time(t, i);
      // Sizes that differ from block to block: a page of the live set
      // cannot share them (a palette), so every block costs its 8 bytes.
      ids[t].push_back(w.Alloc(t, i, Api::kMalloc, 100 + i % 997, t * 100 + 1 + i % 16));
      if (free_all && ids[t].size() - oldest[t] > live) w.Free(t, i, ids[t][oldest[t]++]);
    }
  }
  if (!w.WriteFile(path)) return "";
  return path;
}

// Analyzes `path` in a child limited to its current address space plus
// kHeadroomBytes; returns the child's exit status (0: analyzed, and the
// profile's allocation count is right).
int AnalyzeUnderLimit(const std::string& path) {
  pid_t pid = fork();
  if (pid == 0) {
    // One malloc arena and one decode thread: each extra arena reserves
    // 64 MB of address space, which is not memory in use.
    mallopt(M_ARENA_MAX, 1);
    setenv("HEAPSIGHT_DECODE_THREADS", "1", 1);
    long pages = 0;
    if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
      if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
      std::fclose(f);
    }
    if (pages == 0) _exit(3);
    rlimit limit;
    limit.rlim_cur = limit.rlim_max =
        static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE)) + kHeadroomBytes;
    if (setrlimit(RLIMIT_AS, &limit) != 0) _exit(4);
    // Out of memory ends the child at once: unwinding std::bad_alloc would
    // destroy abseil tables caught mid-growth (their resize is not
    // exception-safe), which crashes instead of telling.
    std::set_new_handler([] { _exit(kOutOfMemory); });
    try {
      absl::StatusOr<ProcessProfile> profile = AnalyzeTrace(path);
      if (!profile.ok()) _exit(1);
      _exit(profile->totals.allocs == kThreads * kAllocsPerThread ? 0 : 2);
    } catch (const std::bad_alloc&) {
      _exit(kOutOfMemory);
    }
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);  // e.g. std::bad_alloc -> abort
}

TEST(BoundedMemoryTest, LongTraceWithFewLiveBlocksFitsUnderALimit) {
  std::string path = WriteTrace("bounded_few_live", true, 50);
  ASSERT_FALSE(path.empty());
  EXPECT_EQ(AnalyzeUnderLimit(path), 0);
  unlink(path.c_str());
}

TEST(BoundedMemoryTest, SameLengthWithEveryBlockLiveExceedsTheLimit) {
  std::string path = WriteTrace("bounded_all_live", false, 0);
  ASSERT_FALSE(path.empty());
  // The limit is below what 2 M live blocks take.
  EXPECT_EQ(AnalyzeUnderLimit(path), kOutOfMemory);
  unlink(path.c_str());
}

// A live block takes a 16-byte slot; sizes and sites too big to pack in
// one word go to a side map and come back unchanged.
TEST(BoundedMemoryTest, LiveSetPacksBlocksAndKeepsTheOnesThatDoNotFit) {
  LiveSet set;
  const LiveBlock blocks[] = {{100, 7},
                              {(uint64_t{1} << 40) - 2, (1u << 24) - 1},
                              {uint64_t{1} << 40, 3},
                              {~uint64_t{0}, 4},
                              {5, 1u << 24},
                              {6, ~0u}};
  for (uint64_t i = 0; i < 100000; ++i) {
    ASSERT_TRUE(set.Insert(i * 7919, blocks[i % 6]));
  }
  EXPECT_FALSE(set.Insert(7919, blocks[0]));
  EXPECT_EQ(set.size(), 100000u);
  for (uint64_t i = 0; i < 100000; ++i) {
    LiveBlock b{};
    ASSERT_TRUE(set.Find(i * 7919, &b)) << i;
    EXPECT_EQ(b.size, blocks[i % 6].size) << i;
    EXPECT_EQ(b.site, blocks[i % 6].site) << i;
  }
  uint64_t sum = 0;
  set.ForEach([&](uint64_t, const LiveBlock& b) { sum += b.site; });
  uint64_t want = 0;
  for (uint64_t i = 0; i < 100000; ++i) want += blocks[i % 6].site;
  EXPECT_EQ(sum, want);
  for (uint64_t i = 0; i < 100000; i += 2) {
    LiveBlock b{};
    ASSERT_TRUE(set.Erase(i * 7919, &b));
    EXPECT_EQ(b.size, blocks[i % 6].size);
    EXPECT_EQ(b.site, blocks[i % 6].site);
  }
  LiveBlock b{};
  EXPECT_FALSE(set.Find(0, &b));
  ASSERT_TRUE(set.Find(7919 * 3, &b));
  EXPECT_EQ(b.size, ~uint64_t{0});  // blocks[3], from the side map
  EXPECT_EQ(set.size(), 50000u);
}

}  // namespace
}  // namespace heapsight::analyzer
