// preload/chunk_spool.cc: see chunk_spool.h.
//
// Constraints: no malloc; no locks on the hand-over (compare-and-swap on
// slot states); the file is opened, sized, mapped, locked and closed once,
// by the thread that starts the writer, under the spool lock (also taken by
// fork's prepare handler; its holders take no other lock). Not
// async-signal-safe.
#include "preload/chunk_spool.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "format/spool_format.h"
#include "format/trace_format.h"
#include "preload/spin_lock.h"
#include "preload/trace_writer.h"

namespace heapsight::preload {
namespace {

using format::SpoolHeader;
using format::SpoolSlotHeader;

uint8_t* g_map = nullptr;  // SpoolHeader, then the slots
size_t g_map_bytes = 0;
size_t g_slot_bytes = 0;
char g_spool_path[4096 + 16];
std::atomic<uint64_t> g_next_ticket{1};
// Held while g_map changes (OpenSpool, CloseSpool) and across fork
// (LockSpoolForFork). Before sig23 a leak request's StopFlusher could
// unmap the spool while another thread forked: the child kept the old
// g_map and its ForgetSpoolInChild unmapped that range, which the parent
// had meanwhile given to another mapping (a thread's unwind cache): the
// child crashed in ResetThreadStatesInChild (lock_stress, 1 child in 50
// runs under load, main 7e6902a).
SpinLock g_spool_lock;
bool g_locked_for_fork = false;  // LockSpoolForFork took it

SpoolSlotHeader* Slot(uint32_t i) {
  return reinterpret_cast<SpoolSlotHeader*>(g_map + sizeof(SpoolHeader) + i * g_slot_bytes);
}

// Slot states live in the shared file: plain u32s, changed with the
// compiler's atomics (std::atomic cannot be placed over a file's bytes).
uint32_t LoadState(SpoolSlotHeader* s) { return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE); }
void StoreState(SpoolSlotHeader* s, uint32_t v) { __atomic_store_n(&s->state, v, __ATOMIC_RELEASE); }
bool CasState(SpoolSlotHeader* s, uint32_t from, uint32_t to) {
  return __atomic_compare_exchange_n(&s->state, &from, to, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED);
}

}  // namespace

int OpenSpool(size_t max_chunk_bytes) {
  SpinLockHolder hold(&g_spool_lock);
  // Still mapped: a stop that left it mapped (a hand-over was still
  // copying, StopFlusher) is reused as it is.
  if (g_map != nullptr) return 0;
  const char* trace = TracePath();
  size_t len = std::strlen(trace);
  if (len == 0) return EBADF;
  if (len + sizeof format::kSpoolSuffix > sizeof g_spool_path) return ENAMETOOLONG;
  std::memcpy(g_spool_path, trace, len);
  std::memcpy(g_spool_path + len, format::kSpoolSuffix, sizeof format::kSpoolSuffix);
  long page = sysconf(_SC_PAGESIZE);
  size_t page_size = page > 0 ? static_cast<size_t>(page) : 4096;
  size_t slot = sizeof(SpoolSlotHeader) + sizeof(format::BlockHeader) + max_chunk_bytes;
  slot = (slot + page_size - 1) / page_size * page_size;
  size_t total = sizeof(SpoolHeader) + kSpoolSlots * slot;
  // Under a file size limit smaller than the spool, sizing it would raise
  // SIGXFSZ (fatal by default): no spool, chunks are written inline.
  rlimit fsize;
  if (getrlimit(RLIMIT_FSIZE, &fsize) == 0 && fsize.rlim_cur != RLIM_INFINITY &&
      fsize.rlim_cur < total) {
    return EFBIG;
  }
  int fd = open(g_spool_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return errno;
  // The lock is taken before the file has a valid header: a reader that
  // finds the file while it is being set up cannot lock it, so never
  // mistakes it for a dead process's spool.
  int err = 0;
  // The blocks are allocated now (fallocate, not a sparse ftruncate): a
  // store into a page of a shared file mapping whose block cannot be
  // allocated (a full disk) is a SIGBUS in the program. No fallocate (a
  // full disk, a file system without it): no spool.
  if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fallocate(fd, 0, 0, static_cast<off_t>(total)) != 0) {
    err = errno;
  }
  void* map = err == 0 ? mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                       : MAP_FAILED;
  if (err == 0 && map == MAP_FAILED) err = errno;
  // The mapping keeps the open file (and with it the flock) alive; the fd
  // is not needed any more, and a program that closes every fd could not
  // take it from us anyway.
  close(fd);
  if (err != 0) {
    unlink(g_spool_path);
    return err;
  }
  // No read-ahead on the spool's faults: each page is written before it is
  // read, and a fault on a file page reads its neighbours in too (zeros
  // of the fallocate'd blocks, up to the read-ahead window, memset by the
  // kernel). With it, writing the header below read in and zeroed a window
  // of pages, and a short process paid that at its start and again when
  // the file went at its exit (stop 40: 3 ms of system time a process).
  madvise(map, total, MADV_RANDOM);
  g_map = static_cast<uint8_t*>(map);
  g_map_bytes = total;
  g_slot_bytes = slot;
  auto* h = reinterpret_cast<SpoolHeader*>(g_map);
  std::memcpy(h->magic, format::kSpoolMagic, sizeof h->magic);
  h->version = format::kSpoolVersion;
  h->slot_count = kSpoolSlots;
  h->slot_bytes = slot;
  h->pid = static_cast<uint64_t>(getpid());
  return 0;
}

bool SpoolChunk(const uint8_t* chunk, size_t raw_size) {
  if (g_map == nullptr ||
      raw_size + sizeof(format::BlockHeader) + sizeof(SpoolSlotHeader) > g_slot_bytes) {
    return false;
  }
  for (uint32_t i = 0; i < kSpoolSlots; ++i) {
    SpoolSlotHeader* s = Slot(i);
    if (LoadState(s) != format::kSpoolSlotFree ||
        !CasState(s, format::kSpoolSlotFree, format::kSpoolSlotFilling)) {
      continue;
    }
    uint8_t* block = reinterpret_cast<uint8_t*>(s + 1);
    format::BlockHeader b = format::MakeBlockHeader(chunk, static_cast<uint32_t>(raw_size),
                                                    format::Codec::kRaw,
                                                    static_cast<uint32_t>(raw_size));
    std::memcpy(block, &b, sizeof b);
    std::memcpy(block + sizeof b, chunk, raw_size);
    s->block_bytes = static_cast<uint32_t>(sizeof b + raw_size);
    s->ticket = g_next_ticket.fetch_add(1, std::memory_order_relaxed);
    // Sealed last, with release order: whoever sees kSealed (the writer
    // thread, or a reader after a SIGKILL) sees the whole block and ticket.
    StoreState(s, format::kSpoolSlotSealed);
    return true;
  }
  return false;
}

bool WriteOldestSealed(int level, uint8_t* scratch, int* cctx_hint, int* err) {
  if (g_map == nullptr) return false;
  for (;;) {
    SpoolSlotHeader* oldest = nullptr;
    uint64_t oldest_ticket = 0;
    for (uint32_t i = 0; i < kSpoolSlots; ++i) {
      SpoolSlotHeader* s = Slot(i);
      if (LoadState(s) != format::kSpoolSlotSealed) continue;
      if (oldest == nullptr || s->ticket < oldest_ticket) {
        oldest = s;
        oldest_ticket = s->ticket;
      }
    }
    if (oldest == nullptr) return false;
    // Claimed (kWriting) before the write: a slot is written once even if
    // two threads drain at the same time (the exit path and the writer).
    if (!CasState(oldest, format::kSpoolSlotSealed, format::kSpoolSlotWriting)) continue;
    uint8_t* chunk = reinterpret_cast<uint8_t*>(oldest + 1) + sizeof(format::BlockHeader);
    size_t raw_size = oldest->block_bytes - sizeof(format::BlockHeader);
    *err = WriteChunk(chunk, raw_size, level, scratch, cctx_hint);
    // Freed only after write(2) returned: until then a SIGKILL leaves the
    // block in the spool (a reader skips it if the trace already has it).
    StoreState(oldest, format::kSpoolSlotFree);
    return true;
  }
}

uint32_t SpoolSlotsFilling() {
  if (g_map == nullptr) return 0;
  uint32_t n = 0;
  for (uint32_t i = 0; i < kSpoolSlots; ++i) {
    if (LoadState(Slot(i)) == format::kSpoolSlotFilling) ++n;
  }
  return n;
}

bool SpoolEmpty() {
  if (g_map == nullptr) return true;
  for (uint32_t i = 0; i < kSpoolSlots; ++i) {
    if (LoadState(Slot(i)) != format::kSpoolSlotFree) return false;
  }
  return true;
}

void CloseSpool() {
  SpinLockHolder hold(&g_spool_lock);
  if (g_map == nullptr) return;
  // Removed before unmapping: once the mapping (and the flock) is gone, a
  // reader could take the lock and recover an empty spool: harmless, but
  // the file would be left behind had we died in between.
  if (SpoolEmpty()) unlink(g_spool_path);
  munmap(g_map, g_map_bytes);
  g_map = nullptr;
}

void LockSpoolForFork() {
  g_locked_for_fork = false;
  for (int i = 0; i < 100000; ++i) {
    if (g_spool_lock.TryLock()) {
      g_locked_for_fork = true;
      return;
    }
    sched_yield();
  }
}

void UnlockSpoolAfterFork() {
  if (g_locked_for_fork) g_spool_lock.Unlock();
  g_locked_for_fork = false;
}

void ForgetSpoolInChild() {
  const bool locked = g_locked_for_fork;
  g_locked_for_fork = false;
  g_spool_lock.ResetInChild();
  if (g_map == nullptr) return;
  // Unmapped, not closed or removed: the file and its slots are the
  // parent's. Unmapping also drops our reference to its open file, so the
  // parent's flock ends with the parent, not with this child. Only when
  // the prepare handler held the spool lock: otherwise g_map may name a
  // range the parent unmapped and reused (left mapped then: at worst the
  // child holds the parent's flock as long as it lives).
  if (locked) munmap(g_map, g_map_bytes);
  g_map = nullptr;
  g_spool_path[0] = '\0';
}

}  // namespace heapsight::preload
