// tests/preload/root_regions_test.cc: where a leak scan looks for pointers
// (preload/root_regions.h): the memory map read from /proc/self/maps, its
// lookups over holes and unreadable pages, and the module roots (writable
// segments of every module but the caller's own, and the static-TLS layout).
#include "preload/root_regions.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>
#include <utility>
#include <vector>

#include "preload/thread_capture.h"

namespace heapsight::preload {
namespace {

int g_data_in_the_executable = 1;
thread_local int t_tls_in_the_executable = 2;

__attribute__((noinline)) int CodeInTheExecutable() { return g_data_in_the_executable; }

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));

struct Map {
  MemoryMap map;
  Map() { EXPECT_TRUE(ReadMemoryMap(&map)); }
  ~Map() { FreeMemoryMap(&map); }
};

TEST(RootRegions, MemoryMapIsSortedDisjointAndClassified) {
  int on_the_stack = 0;
  void* heap = std::malloc(100);
  Map m;
  ASSERT_GT(m.map.count, 5u);
  for (size_t i = 0; i < m.map.count; ++i) {
    ASSERT_LT(m.map.vmas[i].start, m.map.vmas[i].end) << i;
    if (i > 0) {
      ASSERT_LE(m.map.vmas[i - 1].end, m.map.vmas[i].start) << i;
    }
  }
  const Vma* stack = m.map.Find(reinterpret_cast<uintptr_t>(&on_the_stack));
  ASSERT_NE(stack, nullptr);
  EXPECT_TRUE(stack->readable && stack->writable);
  EXPECT_FALSE(stack->executable);
  EXPECT_FALSE(stack->file_backed);
  const Vma* code = m.map.Find(reinterpret_cast<uintptr_t>(&CodeInTheExecutable));
  ASSERT_NE(code, nullptr);
  EXPECT_TRUE(code->readable && code->executable && code->file_backed);
  EXPECT_FALSE(code->writable);
  const Vma* data = m.map.Find(reinterpret_cast<uintptr_t>(&g_data_in_the_executable));
  ASSERT_NE(data, nullptr);
  EXPECT_TRUE(data->readable && data->writable);
  EXPECT_FALSE(data->executable);
  const Vma* block = m.map.Find(reinterpret_cast<uintptr_t>(heap));
  ASSERT_NE(block, nullptr);
  EXPECT_TRUE(block->readable && block->writable);
  EXPECT_EQ(m.map.Find(0), nullptr);
  EXPECT_EQ(m.map.Find(m.map.vmas[m.map.count - 1].end), nullptr);
  std::free(heap);
}

TEST(RootRegions, HolesAndUnreadablePagesAreSkipped) {
  // Five pages: r, none, r, hole (unmapped), r.
  auto* base = static_cast<char*>(
      mmap(nullptr, 5 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(base, MAP_FAILED);
  ASSERT_EQ(mprotect(base + kPage, kPage, PROT_NONE), 0);
  ASSERT_EQ(munmap(base + 3 * kPage, kPage), 0);
  auto at = [&](size_t page) { return reinterpret_cast<uintptr_t>(base) + page * kPage; };
  {
    Map m;
    ASSERT_NE(m.map.Find(at(1)), nullptr);
    EXPECT_FALSE(m.map.Find(at(1))->readable);
    EXPECT_EQ(m.map.Find(at(3)), nullptr);
    EXPECT_EQ(m.map.Find(at(3) + kPage - 1), nullptr);
    EXPECT_TRUE(m.map.Readable(at(0), at(1)));
    EXPECT_FALSE(m.map.Readable(at(0), at(2)));
    EXPECT_FALSE(m.map.Readable(at(2), at(4)));
    EXPECT_TRUE(m.map.Readable(at(2) + 8, at(3)));
    std::vector<std::pair<uintptr_t, uintptr_t>> pieces;
    m.map.ForEachReadable(at(0) + 16, at(5) - 16,
                          [&](uintptr_t lo, uintptr_t hi) { pieces.emplace_back(lo, hi); });
    std::vector<std::pair<uintptr_t, uintptr_t>> want = {
        {at(0) + 16, at(1)}, {at(2), at(3)}, {at(4), at(5) - 16}};
    EXPECT_EQ(pieces, want);
  }
  munmap(base, 3 * kPage);
  munmap(base + 4 * kPage, kPage);
}

bool InRanges(const ModuleRoots& roots, uintptr_t address) {
  for (size_t i = 0; i < roots.range_count; ++i) {
    if (address >= roots.ranges[i].lo && address < roots.ranges[i].hi) return true;
  }
  return false;
}

// The static-TLS block holding `address`, as the roots describe it for the
// thread pointer `tp`.
bool InStaticTls(const ModuleRoots& roots, uintptr_t tp, uintptr_t address) {
  for (size_t i = 0; i < roots.tls_count; ++i) {
    uintptr_t lo = tp - roots.tls[i].offset;
    if (address >= lo && address < lo + roots.tls[i].size) return true;
  }
  return false;
}

TEST(RootRegions, ModuleRootsSkipTheCallersModule) {
  uintptr_t tp = CurrentThreadPointer();
  auto data = reinterpret_cast<uintptr_t>(&g_data_in_the_executable);
  auto tls = reinterpret_cast<uintptr_t>(&t_tls_in_the_executable);
  auto libc_code = reinterpret_cast<uintptr_t>(dlsym(RTLD_DEFAULT, "getpid"));
  ASSERT_NE(libc_code, 0u);
  // A variable in libc's own data (looked up in libc's scope, so not a
  // copy the executable may hold).
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(libc, nullptr);
  auto libc_data = reinterpret_cast<uintptr_t>(dlsym(libc, "program_invocation_name"));
  dlclose(libc);
  ASSERT_NE(libc_data, 0u);

  // Called "from libc": the executable's data and TLS are roots.
  ModuleRoots roots;
  ASSERT_TRUE(CollectModuleRoots(libc_code, tp, &roots));
  EXPECT_TRUE(InRanges(roots, data));
  EXPECT_FALSE(InRanges(roots, libc_data));
  EXPECT_TRUE(InStaticTls(roots, tp, tls));
  // ...and the same TLS offset holds in another thread.
  uintptr_t other_tp = 0, other_tls = 0;
  std::thread([&] {
    other_tp = CurrentThreadPointer();
    other_tls = reinterpret_cast<uintptr_t>(&t_tls_in_the_executable);
  }).join();
  EXPECT_TRUE(InStaticTls(roots, other_tp, other_tls));
  FreeModuleRoots(&roots);
  EXPECT_EQ(roots.ranges, nullptr);

  // Called from the executable: its segments and TLS are left out.
  ASSERT_TRUE(CollectModuleRoots(reinterpret_cast<uintptr_t>(&CodeInTheExecutable), tp, &roots));
  EXPECT_FALSE(InRanges(roots, data));
  EXPECT_FALSE(InStaticTls(roots, tp, tls));
  EXPECT_TRUE(InRanges(roots, libc_data));  // libc and the rest remain
  // Every range is writable memory.
  Map m;
  for (size_t i = 0; i < roots.range_count; ++i) {
    const Vma* v = m.map.Find(roots.ranges[i].hi - 1);
    ASSERT_NE(v, nullptr) << i;
    EXPECT_TRUE(v->writable) << i;
  }
  FreeModuleRoots(&roots);
}

}  // namespace
}  // namespace heapsight::preload
