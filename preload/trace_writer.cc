// preload/trace_writer.cc: see trace_writer.h.
//
// Constraints: no malloc (zstd memory from mmap); one spin lock around each
// block write; a lock-free pool of zstd contexts.
#include "preload/trace_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_customMem, ZSTD_createCCtx_advanced
#include <zstd.h>

#include <atomic>
#include <cstring>

#include "preload/host_guards.h"
#include "preload/internal_alloc.h"
#include "preload/raw_log.h"
#include "preload/spin_lock.h"

// libzstd.a's tracing hooks are weak undefined references, which the
// loader would bind to any host function of that name. Defined here
// (hidden, like everything of ours): "no tracing", and nothing to bind.
extern "C" unsigned long long ZSTD_trace_compress_begin(const ZSTD_CCtx*) { return 0; }
extern "C" void ZSTD_trace_compress_end(unsigned long long, const void*) {}

namespace heapsight::preload {
namespace {

constexpr int kHighFd = 500;
constexpr int kCctxPoolSize = 16;

SpinLock g_file_lock;
int g_fd = -1;
dev_t g_dev = 0;
ino_t g_ino = 0;
char g_path[4096];
bool g_closed = false;  // CloseTrace ran and no OpenTrace since: drop writes

struct CctxSlot {
  std::atomic<bool> busy{false};
  ZSTD_CCtx* cctx = nullptr;
};
CctxSlot g_cctx_pool[kCctxPoolSize];

// zstd's allocator: whole mappings with the size in a 64-byte header (keeps
// zstd's workspace alignment).
void* ZstdAlloc(void*, size_t size) {
  size_t total = size + 64;
  // PageAlloc: registered as heapsight's own memory, never a leak-scan root
  // (the window holds copies of trace records, i.e. block addresses).
  void* p = PageAlloc(total);
  if (p == nullptr) return nullptr;
  *static_cast<size_t*>(p) = total;
  return static_cast<char*>(p) + 64;
}
void ZstdFree(void*, void* p) {
  if (p == nullptr) return;
  char* base = static_cast<char*>(p) - 64;
  PageFree(base, *reinterpret_cast<size_t*>(base));
}

// Takes a free context, trying *hint (the slot this thread used last) first:
// a context's tables (hundreds of KiB) stay warm in the cache of the core
// that last compressed with it, while handing contexts round between
// threads made zstd several times slower per chunk with 2 threads
// (bench/alloc_bench). A first hint may be any non-negative number (the
// thread index spreads threads over the pool); *hint receives the slot taken.
CctxSlot* AcquireCctx(int* hint) {
  for (;;) {
    for (int k = -1; k < kCctxPoolSize; ++k) {
      int i = k >= 0 ? k : *hint >= 0 ? *hint % kCctxPoolSize : -1;
      if (i < 0) continue;
      CctxSlot& slot = g_cctx_pool[i];
      if (slot.busy.load(std::memory_order_relaxed) ||
          slot.busy.exchange(true, std::memory_order_acquire)) {
        continue;
      }
      *hint = i;
      if (slot.cctx == nullptr) {
        slot.cctx = ZSTD_createCCtx_advanced(ZSTD_customMem{ZstdAlloc, ZstdFree, nullptr});
        if (slot.cctx == nullptr) {
          slot.busy.store(false, std::memory_order_release);
          return nullptr;
        }
      }
      return &slot;
    }
    sched_yield();  // more than kCctxPoolSize threads flushing at once
  }
}

// Moves our fd out of the way of the program's lowest numbers (a daemon
// that closes everything and reopens 0, 1, 2 expects its next open to
// return 3). Under a low fd limit, to the highest free number below it.
int MoveHigh(int fd) {
  rlimit rl;
  int target = kHighFd;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < static_cast<rlim_t>(kHighFd) + 16) {
    target = rl.rlim_cur > 32 ? static_cast<int>(rl.rlim_cur) - 16
                              : static_cast<int>(rl.rlim_cur) - 1;
  }
  for (; target > fd; target = target > 32 ? target / 2 : target - 1) {
    int high = fcntl(fd, F_DUPFD_CLOEXEC, target);
    if (high >= 0) {
      close(fd);
      return high;
    }
  }
  return fd;
}

// Makes g_fd refer to our file again if the program closed or replaced it.
// Called with g_file_lock held.
int EnsureFd() {
  struct stat st;
  if (g_fd >= 0 && fstat(g_fd, &st) == 0 && st.st_dev == g_dev && st.st_ino == g_ino) return 0;
  // Not ours any more (closed, or another file dup2'd over it): forget the
  // number without closing it, and reopen our file by its absolute path.
  g_fd = -1;
  int fd = open(g_path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  if (fstat(fd, &st) != 0 || st.st_dev != g_dev || st.st_ino != g_ino) {
    close(fd);
    return ESTALE;  // the file was replaced behind our back
  }
  g_fd = MoveHigh(fd);
  return 0;
}

int WriteAll(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    // Past RLIMIT_FSIZE, write(2) raises SIGXFSZ, which kills the host by
    // default: WriteNoSignal takes it back and we see EFBIG (a write error).
    ssize_t n = WriteNoSignal(g_fd, p, size);
    if (n < 0) return errno;
    if (n == 0) return EIO;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

int LockedWrite(const void* data, size_t size) {
  // write(2) and open(2) are cancellation points: a thread cancelled here
  // would die holding the file lock (and its state lock), issue 12.
  NoCancel no_cancel;
  SpinLockHolder hold(&g_file_lock);
  if (g_path[0] == '\0') return g_closed ? 0 : EBADF;
  int err = EnsureFd();
  if (err != 0) return err;
  return WriteAll(data, size);
}

char* AppendDecimal(char* p, char* end, uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0 && p < end) *p++ = tmp[--n];
  return p;
}

}  // namespace

bool ExpandOutputPattern(const char* pattern, const char* start_dir, const char* exe_path,
                         uint64_t pid, char* out, size_t out_size) {
  char* p = out;
  char* end = out + out_size - 1;
  if (pattern[0] != '/') {
    for (const char* s = start_dir; *s != '\0' && p < end; ++s) *p++ = *s;
    if (p > out && p[-1] != '/' && p < end) *p++ = '/';
  }
  const char* exe_base = std::strrchr(exe_path, '/');
  exe_base = exe_base != nullptr ? exe_base + 1 : exe_path;
  for (const char* s = pattern; *s != '\0' && p < end; ++s) {
    if (s[0] == '%' && s[1] == 'p') {
      p = AppendDecimal(p, end, pid);
      ++s;
    } else if (s[0] == '%' && s[1] == 'e') {
      for (const char* e = *exe_base ? exe_base : "unknown"; *e != '\0' && p < end; ++e) *p++ = *e;
      ++s;
    } else if (s[0] == '%' && s[1] == '%') {
      *p++ = '%';
      ++s;
    } else {
      *p++ = *s;
    }
  }
  if (p >= end) return false;
  *p = '\0';
  return true;
}

int OpenTrace(const char* path_base, const format::FileHeader& header) {
  NoCancel no_cancel;
  size_t len = std::strlen(path_base);
  if (len + 16 >= sizeof g_path) return ENAMETOOLONG;
  bool has_ext = len > 4 && std::strcmp(path_base + len - 4, ".hst") == 0;
  size_t stem = has_ext ? len - 4 : len;
  int fd = -1;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    std::memcpy(g_path, path_base, stem);
    char* p = g_path + stem;
    if (attempt > 0) {
      *p++ = '.';
      p = AppendDecimal(p, g_path + sizeof g_path - 8, static_cast<uint64_t>(attempt));
    }
    if (has_ext) {
      std::memcpy(p, ".hst", 4);
      p += 4;
    }
    *p = '\0';
    fd = open(g_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EEXIST) break;
  }
  if (fd < 0) {
    int err = errno;
    return err;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return err;
  }
  {
    SpinLockHolder hold(&g_file_lock);
    g_dev = st.st_dev;
    g_ino = st.st_ino;
    g_fd = MoveHigh(fd);
    g_closed = false;
  }
  return LockedWrite(&header, sizeof header);
}

const char* TracePath() { return g_path; }

// The manifest is a file that `heapsight record` created in a private
// directory (mkdtemp, 0700) and removes, with the directory, when it ends.
// It is never created here: a process that outlives record finds no file and
// writes nothing. What a process may find at that name instead (a symlink, a
// FIFO, a directory re-created by someone else, a hard link to another file)
// is never written to: the directory must be ours and closed to others, the
// last component no symlink (O_NOFOLLOW), the file a regular file of ours
// with one link. Each entry is the path and a NUL (paths may hold newlines),
// one write(2) on an O_APPEND fd. errno is left as it was.
void AppendToManifest(const char* manifest) {
  if (manifest == nullptr || manifest[0] == '\0' || g_path[0] == '\0') return;
  NoCancel no_cancel;  // open/writev/close are cancellation points
  const char* slash = std::strrchr(manifest, '/');
  char dir[4096];
  size_t dir_len = slash != nullptr ? static_cast<size_t>(slash - manifest) : 0;
  if (dir_len == 0 || dir_len >= sizeof dir || slash[1] == '\0') return;
  int saved_errno = errno;
  std::memcpy(dir, manifest, dir_len);
  dir[dir_len] = '\0';
  int fd = -1;
  int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir_fd >= 0) {
    struct stat st;
    if (fstat(dir_fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 077) == 0) {
      fd = openat(dir_fd, slash + 1, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
                                         O_CLOEXEC);
    }
    close(dir_fd);
  }
  if (fd >= 0) {
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
        st.st_nlink == 1) {
      char terminator = '\0';
      iovec parts[2] = {{g_path, std::strlen(g_path)}, {&terminator, 1}};
      ssize_t r;
      do {
        r = writev(fd, parts, 2);
      } while (r < 0 && errno == EINTR);
    }
    close(fd);
  }
  errno = saved_errno;
}

size_t CompressBound(size_t raw_size) { return ZSTD_COMPRESSBOUND(raw_size); }

int WriteChunk(uint8_t* chunk, size_t raw_size, int level, uint8_t* scratch, int* cctx_hint) {
  // The block header repeats the chunk header so readers can index the
  // trace without decompressing (trace_format.h).
  format::BlockHeader block = format::MakeBlockHeader(chunk, static_cast<uint32_t>(raw_size),
                                                      format::Codec::kRaw, 0);
  // Tiny chunks (write-through mode at exit) are not worth a zstd frame.
  if (level > 0 && raw_size > 256) {
    if (CctxSlot* slot = AcquireCctx(cctx_hint); slot != nullptr) {
      size_t n = ZSTD_compressCCtx(slot->cctx, scratch + kBlockHeaderRoom,
                                   CompressBound(raw_size), chunk, raw_size, level);
      slot->busy.store(false, std::memory_order_release);
      if (!ZSTD_isError(n) && n < raw_size) {
        block.codec = static_cast<uint8_t>(format::Codec::kZstd);
        block.payload_size = static_cast<uint32_t>(n);
        std::memcpy(scratch, &block, sizeof block);
        return LockedWrite(scratch, sizeof block + n);
      }
    }
  }
  block.codec = static_cast<uint8_t>(format::Codec::kRaw);
  block.payload_size = static_cast<uint32_t>(raw_size);
  std::memcpy(chunk - kBlockHeaderRoom, &block, sizeof block);
  return LockedWrite(chunk - kBlockHeaderRoom, sizeof block + raw_size);
}

void CloseTrace() {
  NoCancel no_cancel;
  SpinLockHolder hold(&g_file_lock);
  struct stat st;
  if (g_fd >= 0 && fstat(g_fd, &st) == 0 && st.st_dev == g_dev && st.st_ino == g_ino) close(g_fd);
  g_fd = -1;
  g_path[0] = '\0';
  g_closed = true;
}

void LockWriter() { g_file_lock.Lock(); }
void UnlockWriter() { g_file_lock.Unlock(); }

void ForgetTraceInChild() {
  g_file_lock.ResetInChild();
  // The parent's fd is shared with us: close our copy so the child never
  // appends to the parent's file; only if it is still ours (the program may
  // have closed it and got the number back for a file of its own).
  struct stat st;
  if (g_fd >= 0 && fstat(g_fd, &st) == 0 && st.st_dev == g_dev && st.st_ino == g_ino) close(g_fd);
  g_fd = -1;
  g_path[0] = '\0';
  for (CctxSlot& slot : g_cctx_pool) slot.busy.store(false, std::memory_order_relaxed);
}

}  // namespace heapsight::preload
