// tests/examples/heap_limit_program.cc: checks, from inside a program run
// with HEAPSIGHT_HEAP_LIMIT=1M, that every allocation API fails past the
// limit the way it does when memory really runs out, and that freeing makes
// room again. Prints one line per failed check; exits 0 when all hold.
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>

namespace {

int g_failures = 0;
int g_handler_calls = 0;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAILED: %s\n", what);
    ++g_failures;
  }
}

void Handler() {
  ++g_handler_calls;
  std::set_new_handler(nullptr);  // a real OOM handler would free memory; this one gives up
}

// Fills the heap with 100 KiB blocks until malloc fails; returns how many fit.
int FillWithBlocks(std::vector<void*>* blocks) {
  for (;;) {
    void* p = std::malloc(100 * 1024);
    if (p == nullptr) return static_cast<int>(blocks->size());
    blocks->push_back(p);
  }
}

}  // namespace

int main() {
  // Without a limit the fills below would never stop.
  if (getenv("HEAPSIGHT_HEAP_LIMIT") == nullptr) {
    std::puts("run me with HEAPSIGHT_HEAP_LIMIT=1M under heapsight");
    return 2;
  }
  constexpr size_t kBig = 2 << 20;  // past the 1 MiB limit
  errno = 0;
  Check(std::malloc(kBig) == nullptr && errno == ENOMEM, "malloc returns NULL, errno ENOMEM");
  errno = 0;
  Check(std::calloc(kBig, 1) == nullptr && errno == ENOMEM, "calloc returns NULL, errno ENOMEM");
  errno = 0;
  Check(aligned_alloc(64, kBig) == nullptr && errno == ENOMEM, "aligned_alloc returns NULL");
  errno = 0;
  Check(memalign(64, kBig) == nullptr && errno == ENOMEM, "memalign returns NULL");
  void* out = nullptr;
  Check(posix_memalign(&out, 64, kBig) == ENOMEM, "posix_memalign returns ENOMEM");

  char* small = static_cast<char*>(std::malloc(16));
  Check(small != nullptr, "a small malloc succeeds");
  small[0] = 'x';
  errno = 0;
  Check(std::realloc(small, kBig) == nullptr && errno == ENOMEM, "growing realloc fails");
  Check(small[0] == 'x', "the block survives a failed realloc");
  std::free(small);

  bool thrown = false;
  try {
    char* p = new char[kBig];
    p[0] = 0;
  } catch (const std::bad_alloc&) {
    thrown = true;
  }
  Check(thrown, "operator new[] throws std::bad_alloc");
  std::set_new_handler(Handler);
  thrown = false;
  try {
    char* p = new char[kBig];
    p[0] = 0;
  } catch (const std::bad_alloc&) {
    thrown = true;
  }
  Check(thrown && g_handler_calls == 1, "operator new consults the new-handler, then throws");
  Check(new (std::nothrow) char[kBig] == nullptr, "nothrow new returns NULL");

  std::vector<void*> blocks;
  blocks.reserve(64);
  int first = FillWithBlocks(&blocks);
  Check(first >= 8 && first <= 10, "about 1 MiB / 100 KiB blocks fit");
  for (void* p : blocks) std::free(p);
  blocks.clear();
  int second = FillWithBlocks(&blocks);
  Check(second == first, "freeing makes the same room again");
  for (void* p : blocks) std::free(p);
  std::printf("blocks: %d %d, failures: %d\n", first, second, g_failures);
  return g_failures == 0 ? 0 : 1;
}
