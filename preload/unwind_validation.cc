// preload/unwind_validation.cc: see unwind_validation.h.
//
// Constraints: no allocation, no locks of ours; the replacement functions
// are async-signal-safe (libunwind may unwind in a signal handler of the
// program) and are not cancellation points (pipe2/read/close/write would
// have been).
#include "preload/unwind_validation.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

namespace heapsight::preload {
namespace {

// Numbers no fd can have (fds are non-negative) and that libunwind's
// "is the pipe open" test (fd != -1) takes for open ones.
constexpr int kReadEnd = -4242;
constexpr int kWriteEnd = -4243;

// process_vm_readv works (it may be refused by a seccomp filter; then the
// mincore/msync check libunwind made first is all the validation left, as
// for any mapped page).
std::atomic<bool> g_vm_readv_ok{true};

int PipeHook(int fds[2], int) {
  fds[0] = kReadEnd;
  fds[1] = kWriteEnd;
  return 0;
}

// libunwind reads one byte to drain the pipe and loops while errno is
// EINTR: an empty non-blocking pipe (-1, EAGAIN) is what it expects.
ssize_t ReadHook(int fd, void* buf, size_t n) {
  if (fd == kReadEnd) {
    errno = EAGAIN;
    return -1;
  }
  return read(fd, buf, n);
}

int CloseHook(int fd) {
  if (fd == kReadEnd || fd == kWriteEnd) return 0;
  return close(fd);
}

// True if the byte at `address` can be read.
bool Readable(uintptr_t address) {
  if (!g_vm_readv_ok.load(std::memory_order_relaxed)) return true;
  char byte;
  iovec local = {&byte, 1};
  iovec remote = {reinterpret_cast<void*>(address), 1};
  // getpid() each time: a fork child must read its own memory.
  ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  if (n == 1) return true;
  if (errno == EFAULT) return false;
  g_vm_readv_ok.store(false, std::memory_order_relaxed);  // ENOSYS, EPERM: unusable
  return true;
}

// syscall(2) is variadic; x86-64 passes up to six register arguments, and
// reading six from the va_list is what glibc's own syscall() does.
long SyscallHook(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (long& v : a) v = va_arg(ap, long);
  va_end(ap);
  // The fd was passed as an int: only the low 32 bits of its slot are set
  // (as the kernel reads it).
  if (number == SYS_write && static_cast<int>(a[0]) == kWriteEnd) {
    // libunwind loops while errno is EINTR, also after a success.
    if (Readable(static_cast<uintptr_t>(a[1]))) {
      if (errno == EINTR) errno = EAGAIN;
      return 1;
    }
    errno = EFAULT;
    return -1;
  }
  return syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

// A libunwind built without <sys/syscall.h> writes with write(2) instead.
ssize_t WriteHook(int fd, const void* buf, size_t n) {
  if (fd == kWriteEnd) {
    if (Readable(reinterpret_cast<uintptr_t>(buf))) {
      if (errno == EINTR) errno = EAGAIN;
      return 1;
    }
    errno = EFAULT;
    return -1;
  }
  return write(fd, buf, n);
}

struct Redirect {
  const char* name;
  void* to;
};
// The first three and one of the last two must all be redirected, or none
// is: fake fds with a real write would fail every validation (no stacks).
const Redirect kRedirects[] = {
    {"pipe2", reinterpret_cast<void*>(&PipeHook)},
    {"read", reinterpret_cast<void*>(&ReadHook)},
    {"close", reinterpret_cast<void*>(&CloseHook)},
    {"syscall", reinterpret_cast<void*>(&SyscallHook)},
    {"write", reinterpret_cast<void*>(&WriteHook)},
};
constexpr int kRedirectCount = sizeof kRedirects / sizeof kRedirects[0];
constexpr int kMaxSlots = 16;

struct RelroSearch {
  uintptr_t base;
  uintptr_t relro_begin = 0;
  uintptr_t relro_end = 0;
};

int FindRelro(dl_phdr_info* info, size_t, void* arg) {
  auto* s = static_cast<RelroSearch*>(arg);
  if (info->dlpi_addr != s->base) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_GNU_RELRO) {
      s->relro_begin = info->dlpi_addr + ph.p_vaddr;
      s->relro_end = s->relro_begin + ph.p_memsz;
    }
  }
  return 1;
}

void WriteSlot(uintptr_t slot, void* value, const RelroSearch& relro) {
  long page_size = sysconf(_SC_PAGESIZE);
  uintptr_t page = slot & ~static_cast<uintptr_t>(page_size - 1);
  bool read_only = slot >= relro.relro_begin && slot < relro.relro_end;
  if (read_only && mprotect(reinterpret_cast<void*>(page), static_cast<size_t>(page_size),
                            PROT_READ | PROT_WRITE) != 0) {
    return;
  }
  __atomic_store_n(reinterpret_cast<void**>(slot), value, __ATOMIC_RELEASE);
  if (read_only) mprotect(reinterpret_cast<void*>(page), static_cast<size_t>(page_size), PROT_READ);
}

}  // namespace

int InstallUnwindValidation() {
  int saved_errno = errno;
  link_map* map = nullptr;
  Dl_info info;
  if (dladdr1(reinterpret_cast<void*>(&unw_backtrace), &info, reinterpret_cast<void**>(&map),
              RTLD_DL_LINKMAP) == 0 ||
      map == nullptr) {
    errno = saved_errno;
    return 0;
  }
  uintptr_t base = map->l_addr;
  // The loader relocates these d_ptr values in place on x86-64; an
  // unrelocated (small) one is an offset from the base.
  auto address = [base](ElfW(Addr) p) { return p < base ? base + p : p; };
  const ElfW(Sym)* symtab = nullptr;
  const char* strtab = nullptr;
  uintptr_t jmprel = 0, rela = 0;
  size_t jmprel_size = 0, rela_size = 0;
  for (const ElfW(Dyn)* d = map->l_ld; d->d_tag != DT_NULL; ++d) {
    switch (d->d_tag) {
      case DT_SYMTAB: symtab = reinterpret_cast<const ElfW(Sym)*>(address(d->d_un.d_ptr)); break;
      case DT_STRTAB: strtab = reinterpret_cast<const char*>(address(d->d_un.d_ptr)); break;
      case DT_JMPREL: jmprel = address(d->d_un.d_ptr); break;
      case DT_PLTRELSZ: jmprel_size = d->d_un.d_val; break;
      case DT_RELA: rela = address(d->d_un.d_ptr); break;
      case DT_RELASZ: rela_size = d->d_un.d_val; break;
      default: break;
    }
  }
  if (symtab == nullptr || strtab == nullptr) {
    errno = saved_errno;
    return 0;
  }
  RelroSearch relro{base};
  dl_iterate_phdr(FindRelro, &relro);
  // Calls through the PLT (JUMP_SLOT) or, with -fno-plt, through the GOT
  // (GLOB_DAT): both are one pointer-sized slot per symbol. Found first,
  // written only if the set is complete.
  uintptr_t slots[kMaxSlots];
  const Redirect* targets[kMaxSlots];
  int count = 0;
  bool found[kRedirectCount] = {};
  for (auto [table, size] : {std::pair{jmprel, jmprel_size}, std::pair{rela, rela_size}}) {
    if (table == 0) continue;
    const auto* r = reinterpret_cast<const ElfW(Rela)*>(table);
    for (size_t i = 0; i < size / sizeof(ElfW(Rela)); ++i) {
      auto type = ELF64_R_TYPE(r[i].r_info);
      if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) continue;
      const char* name = strtab + symtab[ELF64_R_SYM(r[i].r_info)].st_name;
      for (int k = 0; k < kRedirectCount && count < kMaxSlots; ++k) {
        if (std::strcmp(name, kRedirects[k].name) != 0) continue;
        slots[count] = base + r[i].r_offset;
        targets[count++] = &kRedirects[k];
        found[k] = true;
      }
    }
  }
  bool complete = found[0] && found[1] && found[2] && (found[3] || found[4]);
  if (complete) {
    for (int i = 0; i < count; ++i) WriteSlot(slots[i], targets[i]->to, relro);
  }
  errno = saved_errno;
  return complete ? count : 0;
}

}  // namespace heapsight::preload
