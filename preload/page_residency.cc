// preload/page_residency.cc: see page_residency.h.
//
// Constraints: no malloc, no locks, no loader calls; raw system calls only
// (errno untouched).
#include "preload/page_residency.h"

#include <fcntl.h>
#include <sys/syscall.h>

#include "preload/raw_syscall.h"

namespace heapsight::preload {
namespace {

constexpr uintptr_t kPage = 4096;
// Entries read per system call: 4 KiB of the caller's stack, 2 MiB of
// address space.
constexpr size_t kBatch = 512;

}  // namespace

PageResidency::~PageResidency() { Close(); }

void PageResidency::Close() {
  if (fd_ >= 0) RawSyscall(SYS_close, fd_);
  fd_ = kUnopened;
}

bool PageResidency::Open() {
  if (fd_ == kUnopened) {
    long fd = RawSyscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/self/pagemap"),
                         O_RDONLY | O_CLOEXEC);
    fd_ = fd >= 0 ? static_cast<int>(fd) : -1;
    // Trusted only if it says a page in use is present: this frame's own
    // stack page. An emulated /proc that answers zeros would otherwise
    // have every page skipped, and every pointer in them missed.
    volatile uintptr_t here = 0;
    uint64_t entry = 0;
    if (fd_ >= 0 &&
        (RawSyscall(SYS_pread64, fd_, reinterpret_cast<long>(&entry), sizeof entry,
                    static_cast<long>(reinterpret_cast<uintptr_t>(&here) / kPage *
                                      sizeof(uint64_t))) != sizeof entry ||
         (entry & kPresent) == 0)) {
      RawSyscall(SYS_close, fd_);
      fd_ = -1;
    }
  }
  return fd_ >= 0;
}

uint64_t PageResidency::ForEachUsedRun(uintptr_t lo, uintptr_t hi,
                                       void (*fn)(uintptr_t, uintptr_t, void*), void* ctx) {
  if (hi <= lo) return 0;
  if (hi - lo < kMinBytes || !Open()) {
    fn(lo, hi, ctx);
    return 0;
  }
  uint64_t skipped = 0;
  uint64_t entries[kBatch];
  uintptr_t page = lo & ~(kPage - 1);
  // The run of used pages not yet handed to fn starts at `run`.
  bool in_run = false;
  uintptr_t run = 0;
  while (page < hi) {
    size_t n = (hi - page + kPage - 1) / kPage;
    if (n > kBatch) n = kBatch;
    long got = RawSyscall(SYS_pread64, fd_, reinterpret_cast<long>(entries),
                          static_cast<long>(n * sizeof(uint64_t)),
                          static_cast<long>(page / kPage * sizeof(uint64_t)));
    if (got != static_cast<long>(n * sizeof(uint64_t))) {
      // The kernel would not say (a range beyond user space, an error):
      // everything from here on is read.
      fn(in_run ? run : (page > lo ? page : lo), hi, ctx);
      return skipped;
    }
    pages_checked_ += n;
    for (size_t k = 0; k < n; ++k) {
      uintptr_t at = page + k * kPage;
      bool used = (entries[k] & (kPresent | kSwapped)) != 0;
      if (used) {
        if (!in_run) run = at > lo ? at : lo;
        in_run = true;
        continue;
      }
      ++pages_skipped_;
      uintptr_t end = at + kPage < hi ? at + kPage : hi;
      skipped += end - (at > lo ? at : lo);
      if (in_run) {
        fn(run, at, ctx);
        in_run = false;
      }
    }
    page += n * kPage;
  }
  if (in_run) fn(run, hi, ctx);
  return skipped;
}

}  // namespace heapsight::preload
