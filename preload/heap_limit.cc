// preload/heap_limit.cc: see heap_limit.h.
//
// Constraints: no malloc (malloc_usable_size only reads the chunk header),
// no locks on the event path; the marker on the first denial goes through
// user_api.h (thread-state lock, one flush).
#include "preload/heap_limit.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include "preload/raw_log.h"
#include "preload/real_functions.h"
#include "preload/recorder.h"
#include "preload/reentry_guard.h"
#include "preload/user_api.h"

namespace heapsight::preload {

uint64_t g_heap_limit_bytes = 0;
std::atomic<int64_t> g_heap_limit_live{0};

namespace {

std::atomic<bool> g_limit_hit{false};

size_t UsableSize(void* p) {
  if (p == nullptr || IsBootstrapPointer(p)) return 0;
  return malloc_usable_size(p);
}

std::atomic<bool> g_limit_read{false};

// Our constructor reads it too, for a process whose trace did not start
// before (HEAPSIGHT_DISABLE, or no allocation before our constructor).
__attribute__((constructor(102))) void ReadHeapLimitInConstructor() { ReadHeapLimitOnce(); }

}  // namespace

void ReadHeapLimitOnce() {
  if (g_limit_read.exchange(true)) return;
  const char* text = getenv("HEAPSIGHT_HEAP_LIMIT");
  if (text == nullptr || *text == '\0') return;
  uint64_t bytes = 0;
  if (!ParseByteSize(text, &bytes) || bytes == 0) {
    const char* quiet = getenv("HEAPSIGHT_QUIET");
    if (quiet == nullptr || *quiet == '\0' || *quiet == '0') {
      RawBuffer b;
      b.Str("invalid HEAPSIGHT_HEAP_LIMIT=").Str(text).Str(
          " (expected bytes with an optional K/M/G suffix); no limit");
      RawLog(b);
    }
    return;
  }
  g_heap_limit_bytes = bytes;
}

bool ParseByteSize(const char* text, uint64_t* out) {
  if (text == nullptr || *text < '0' || *text > '9') return false;
  uint64_t v = 0;
  const char* s = text;
  for (; *s >= '0' && *s <= '9'; ++s) {
    if (v > (uint64_t{1} << 50)) return false;
    v = v * 10 + static_cast<uint64_t>(*s - '0');
  }
  int shift = 0;
  switch (*s) {
    case 'k': case 'K': shift = 10; ++s; break;
    case 'm': case 'M': shift = 20; ++s; break;
    case 'g': case 'G': shift = 30; ++s; break;
    case 't': case 'T': shift = 40; ++s; break;
    default: break;
  }
  if (shift != 0 && *s == 'i') ++s;
  if (*s == 'b' || *s == 'B') ++s;
  if (*s != '\0') return false;
  if (shift != 0 && v > (UINT64_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

bool HeapLimitCheck(size_t size) {
  if (InHeapsight()) return false;  // never fail heapsight's own work
  int64_t live = g_heap_limit_live.load(std::memory_order_relaxed);
  uint64_t now = live > 0 ? static_cast<uint64_t>(live) : 0;
  if (size <= g_heap_limit_bytes && now <= g_heap_limit_bytes - size) return false;
  if (!g_limit_hit.exchange(true, std::memory_order_relaxed)) {
    // The first time: mark the moment, durably (the program may not survive).
    WriteMarker(format::kHeapLimitMarker, /*flush_all=*/true);
  }
  return true;
}

void HeapLimitAddSlow(void* p) {
  g_heap_limit_live.fetch_add(static_cast<int64_t>(UsableSize(p)), std::memory_order_relaxed);
}

void HeapLimitSubSlow(void* p) {
  g_heap_limit_live.fetch_sub(static_cast<int64_t>(UsableSize(p)), std::memory_order_relaxed);
}

bool HeapLimitReallocBegin(void* p, size_t size, size_t* old) {
  *old = 0;
  if (__builtin_expect(g_heap_limit_bytes == 0, 1)) return true;
  *old = UsableSize(p);
  return size <= *old || !HeapLimitCheck(size - *old);
}

void HeapLimitReallocEnd(size_t old, void* q, size_t size) {
  if (__builtin_expect(g_heap_limit_bytes == 0, 1)) return;
  if (q != nullptr) {
    g_heap_limit_live.fetch_add(static_cast<int64_t>(UsableSize(q)) - static_cast<int64_t>(old),
                                std::memory_order_relaxed);
  } else if (size == 0) {
    g_heap_limit_live.fetch_sub(static_cast<int64_t>(old), std::memory_order_relaxed);
  }
}

void* HeapLimitFail(size_t size, size_t alignment, format::Api api) {
  RecordAlloc(nullptr, size, alignment, api);
  errno = ENOMEM;
  return nullptr;
}

}  // namespace heapsight::preload
