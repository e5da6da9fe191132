// tests/preload/heap_limit_test.cc: HEAPSIGHT_HEAP_LIMIT's arithmetic
// (preload/heap_limit.h): size parsing, the limit check with its one-time
// marker, the live count in usable sizes, realloc's two halves, and the
// failure path. heap_limit.cc is linked alone; the four functions it calls
// in the rest of the preload are stood in for below, recording their calls.
#include "preload/heap_limit.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "preload/real_functions.h"
#include "preload/recorder.h"
#include "preload/reentry_guard.h"
#include "preload/user_api.h"

namespace heapsight::preload {

// --- stand-ins for the rest of the preload ---------------------------------
constinit thread_local int t_reentry_depth __attribute__((tls_model("initial-exec"))) = 0;
const void* g_fake_bootstrap_block = nullptr;
bool IsBootstrapPointer(const void* p) { return p != nullptr && p == g_fake_bootstrap_block; }

struct FailedAlloc {
  void* p;
  size_t size, alignment;
  format::Api api;
};
std::vector<FailedAlloc> g_recorded;
void RecordAlloc(void* p, size_t size, size_t alignment, format::Api api) {
  g_recorded.push_back({p, size, alignment, api});
}
std::vector<std::string> g_markers;
bool WriteMarker(const char* name, bool flush_all) {
  g_markers.push_back(std::string(name) + (flush_all ? " (flushed)" : ""));
  return true;
}

namespace {

uint64_t Parse(const char* text) {
  uint64_t v = 12345;
  EXPECT_TRUE(ParseByteSize(text, &v)) << text;
  return v;
}

TEST(HeapLimit, ParsesBytesWithBinarySuffixes) {
  EXPECT_EQ(Parse("0"), 0u);
  EXPECT_EQ(Parse("1048576"), 1048576u);
  EXPECT_EQ(Parse("512K"), 512u << 10);
  EXPECT_EQ(Parse("64M"), uint64_t{64} << 20);
  EXPECT_EQ(Parse("2G"), uint64_t{2} << 30);
  EXPECT_EQ(Parse("3T"), uint64_t{3} << 40);
  EXPECT_EQ(Parse("64m"), uint64_t{64} << 20);
  EXPECT_EQ(Parse("64MB"), uint64_t{64} << 20);
  EXPECT_EQ(Parse("64Mb"), uint64_t{64} << 20);
  EXPECT_EQ(Parse("64MiB"), uint64_t{64} << 20);
  EXPECT_EQ(Parse("64Mi"), uint64_t{64} << 20);
  EXPECT_EQ(Parse("100B"), 100u);
  EXPECT_EQ(Parse("16777215T"), uint64_t{16777215} << 40);  // the largest T that fits
}

TEST(HeapLimit, RejectsEverythingElse) {
  for (const char* bad : {"", "M", "-1", "+1", " 64M", "64 M", "64MM", "1.5G", "64X", "64iB",
                          "64KiBB", "0x10", "16777216T", "18446744073709551616",
                          "99999999999999999999"}) {
    uint64_t v = 777;
    EXPECT_FALSE(ParseByteSize(bad, &v)) << "\"" << bad << "\"";
    EXPECT_EQ(v, 777u) << "\"" << bad << "\"";  // untouched
  }
  uint64_t v = 777;
  EXPECT_FALSE(ParseByteSize(nullptr, &v));
}

class HeapLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_heap_limit_bytes = 0;
    g_heap_limit_live = 0;
    g_markers.clear();
    g_recorded.clear();
  }
  void TearDown() override {
    g_heap_limit_bytes = 0;
    g_heap_limit_live = 0;
  }
};

TEST_F(HeapLimitTest, NoLimitDeniesNothingAndCountsNothing) {
  EXPECT_FALSE(HeapLimitDenies(SIZE_MAX));
  void* p = std::malloc(100);
  HeapLimitAdd(p);
  EXPECT_EQ(g_heap_limit_live.load(), 0);
  size_t old = 99;
  EXPECT_TRUE(HeapLimitReallocBegin(p, SIZE_MAX, &old));
  EXPECT_EQ(old, 0u);
  std::free(p);
  EXPECT_TRUE(g_markers.empty());
}

TEST_F(HeapLimitTest, DeniesExactlyPastTheLimitAndMarksTheFirstTime) {
  g_heap_limit_bytes = 1000;
  g_heap_limit_live = 900;
  EXPECT_FALSE(HeapLimitDenies(100));  // reaching the limit is allowed
  EXPECT_TRUE(g_markers.empty());
  EXPECT_TRUE(HeapLimitDenies(101));
  EXPECT_TRUE(HeapLimitDenies(SIZE_MAX));  // no overflow in the comparison
  EXPECT_TRUE(HeapLimitDenies(1001));
  // One marker, flushed, however many denials (the flag is process-wide:
  // this is the test binary's first denial).
  EXPECT_EQ(g_markers, std::vector<std::string>{"heap-limit (flushed)"});
  // A negative live count (blocks from before the limit freed) counts as 0.
  g_heap_limit_live = -500;
  EXPECT_FALSE(HeapLimitDenies(1000));
  EXPECT_TRUE(HeapLimitDenies(1001));
  // heapsight's own allocations are never denied.
  ++t_reentry_depth;
  EXPECT_FALSE(HeapLimitDenies(SIZE_MAX));
  --t_reentry_depth;
  EXPECT_EQ(g_markers.size(), 1u);
}

TEST_F(HeapLimitTest, LiveCountIsInUsableSizes) {
  g_heap_limit_bytes = 1 << 30;
  void* a = std::malloc(100);
  void* b = std::malloc(5000);
  HeapLimitAdd(a);
  HeapLimitAdd(b);
  HeapLimitAdd(nullptr);
  int64_t both = static_cast<int64_t>(malloc_usable_size(a) + malloc_usable_size(b));
  EXPECT_GE(both, 5100);
  EXPECT_EQ(g_heap_limit_live.load(), both);
  HeapLimitSub(a);
  HeapLimitSub(nullptr);
  EXPECT_EQ(g_heap_limit_live.load(), static_cast<int64_t>(malloc_usable_size(b)));
  // Blocks of the bootstrap allocator count as nothing.
  g_fake_bootstrap_block = b;
  HeapLimitSub(b);
  EXPECT_EQ(g_heap_limit_live.load(), static_cast<int64_t>(malloc_usable_size(b)));
  g_fake_bootstrap_block = nullptr;
  std::free(a);
  std::free(b);
}

TEST_F(HeapLimitTest, ReallocChecksOnlyTheGrowthAndMovesTheCount) {
  void* p = std::malloc(1000);
  const size_t usable = malloc_usable_size(p);
  g_heap_limit_bytes = usable + 100;
  g_heap_limit_live = static_cast<int64_t>(usable);
  size_t old = 0;
  EXPECT_TRUE(HeapLimitReallocBegin(p, 10, &old));  // shrinking
  EXPECT_EQ(old, usable);
  EXPECT_TRUE(HeapLimitReallocBegin(p, usable + 100, &old));  // grows by exactly the room left
  EXPECT_FALSE(HeapLimitReallocBegin(p, usable + 101, &old));
  EXPECT_EQ(old, usable);

  void* q = std::realloc(p, usable + 50);
  ASSERT_NE(q, nullptr);
  HeapLimitReallocEnd(usable, q, usable + 50);
  EXPECT_EQ(g_heap_limit_live.load(), static_cast<int64_t>(malloc_usable_size(q)));
  // A failed realloc (nullptr, size > 0) leaves the count alone...
  int64_t before = g_heap_limit_live.load();
  HeapLimitReallocEnd(malloc_usable_size(q), nullptr, 1 << 20);
  EXPECT_EQ(g_heap_limit_live.load(), before);
  // ...realloc(q, 0), which freed it, removes it.
  HeapLimitReallocEnd(malloc_usable_size(q), nullptr, 0);
  EXPECT_EQ(g_heap_limit_live.load(), 0);
  std::free(q);
}

TEST_F(HeapLimitTest, FailureLooksLikeARealOutOfMemory) {
  errno = 0;
  EXPECT_EQ(HeapLimitFail(4096, 64, format::Api::kAlignedAlloc), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  ASSERT_EQ(g_recorded.size(), 1u);
  EXPECT_EQ(g_recorded[0].p, nullptr);  // recorded as a failed allocation
  EXPECT_EQ(g_recorded[0].size, 4096u);
  EXPECT_EQ(g_recorded[0].alignment, 64u);
  EXPECT_EQ(g_recorded[0].api, format::Api::kAlignedAlloc);
}

}  // namespace
}  // namespace heapsight::preload
