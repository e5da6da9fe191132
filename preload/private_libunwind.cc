// preload/private_libunwind.cc: see private_libunwind.h.
//
// Constraints: no malloc (the image is PageAlloc'ed, headers are read into
// stack buffers); LoadPrivateLibunwind runs once under the reentry guard.
// The trampolines are single indirect jumps; the replacements bound into
// libunwind allocate nothing but pages (its mmap: PageAlloc, whose region
// registry is lock-free) and take no lock of ours.
#include "preload/private_libunwind.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "preload/fork_gate.h"
#include "preload/host_guards.h"
#include "preload/internal_alloc.h"
#include "preload/raw_log.h"
#include "preload/real_functions.h"
#include "preload/tracer_state.h"
#include "preload/unwind_validation.h"

#ifndef HEAPSIGHT_LIBUNWIND_PATH
#define HEAPSIGHT_LIBUNWIND_PATH "/usr/lib/x86_64-linux-gnu/libunwind.so.8"
#endif

// --- The functions of libunwind the preload calls ---------------------------
// Each is `jmp *heapsight_unw_slots[i]`: no frame of its own, so
// unw_getcontext records its caller's registers and unw_backtrace starts at
// its caller, as when called directly. The slots start at failing stubs.
namespace {
int StubBacktrace(void**, int) { return 0; }
int StubFail() { return -1; }  // -UNW_EUNSPEC
int StubZero() { return 0; }
}  // namespace

extern "C" {
// Order: the asm below.
void* heapsight_unw_slots[7] = {
    reinterpret_cast<void*>(&StubBacktrace),  // unw_backtrace
    reinterpret_cast<void*>(&StubFail),       // _Ux86_64_getcontext
    reinterpret_cast<void*>(&StubFail),       // _ULx86_64_init_local
    reinterpret_cast<void*>(&StubZero),       // _ULx86_64_step (0: no more frames)
    reinterpret_cast<void*>(&StubFail),       // _ULx86_64_get_reg
    reinterpret_cast<void*>(&StubFail),       // _ULx86_64_get_save_loc
    reinterpret_cast<void*>(&StubZero),       // _ULx86_64_is_signal_frame
};
}

#define HEAPSIGHT_UNW_TRAMPOLINE(name, index)        \
  "  .globl " #name "\n"                             \
  "  .hidden " #name "\n"                            \
  "  .type " #name ", @function\n"                   \
  "  .p2align 4\n"                                   \
  #name ":\n"                                        \
  "  endbr64\n"                                      \
  "  jmp *heapsight_unw_slots+" #index "*8(%rip)\n"  \
  "  .size " #name ", .-" #name "\n"

asm(".text\n"
    HEAPSIGHT_UNW_TRAMPOLINE(unw_backtrace, 0)
    HEAPSIGHT_UNW_TRAMPOLINE(_Ux86_64_getcontext, 1)
    HEAPSIGHT_UNW_TRAMPOLINE(_ULx86_64_init_local, 2)
    HEAPSIGHT_UNW_TRAMPOLINE(_ULx86_64_step, 3)
    HEAPSIGHT_UNW_TRAMPOLINE(_ULx86_64_get_reg, 4)
    HEAPSIGHT_UNW_TRAMPOLINE(_ULx86_64_get_save_loc, 5)
    HEAPSIGHT_UNW_TRAMPOLINE(_ULx86_64_is_signal_frame, 6));

namespace heapsight::preload {
namespace {

constexpr const char* kExports[7] = {
    "unw_backtrace",       "_Ux86_64_getcontext",    "_ULx86_64_init_local",
    "_ULx86_64_step",      "_ULx86_64_get_reg",      "_ULx86_64_get_save_loc",
    "_ULx86_64_is_signal_frame",
};

constexpr int kMaxPhdrs = 16;
constexpr int kMaxShdrs = 64;
constexpr size_t kTlsBytes = 16;
constexpr size_t kTlsAlign = 16;

// libunwind's TLS block, inside our own static TLS (zero at every thread's
// start, as the loader would have made it).
alignas(kTlsAlign) thread_local unsigned char t_libunwind_tls[kTlsBytes]
    __attribute__((tls_model("initial-exec")));

struct Image {
  uintptr_t bias = 0;  // load address minus the lowest p_vaddr (0)
  uintptr_t begin = 0, end = 0;
  const ElfW(Phdr)* phdr = nullptr;
  int phnum = 0;
};
Image g_image;
std::atomic<int> g_state{0};  // 0 not tried, 1 loading, 2 loaded, 3 failed

// --- What libunwind's imports are bound to ----------------------------------

struct TlsIndex {
  unsigned long module;
  unsigned long offset;
};
// Its __tls_get_addr (local-dynamic: offset 0, then its own offsets).
void* PrivateTlsGetAddr(TlsIndex* index) { return t_libunwind_tls + index->offset; }

struct IterateContext {
  int (*callback)(dl_phdr_info*, size_t, void*);
  void* data;
  unsigned long long adds = 0, subs = 0;
};
int ForwardObject(dl_phdr_info* info, size_t size, void* arg) {
  auto* c = static_cast<IterateContext*>(arg);
  c->adds = info->dlpi_adds;
  c->subs = info->dlpi_subs;
  return c->callback(info, size, c->data);
}
// Its dl_iterate_phdr: the process's objects, then the private copy (which
// only libunwind's own frames can be in).
int PrivateIteratePhdr(int (*callback)(dl_phdr_info*, size_t, void*), void* data) {
  IterateContext c{callback, data};
  // Gated (fork_gate.h; the unw_backtrace that got here is already inside).
  int r = GatedIteratePhdr(ForwardObject, &c);
  if (r != 0) return r;
  dl_phdr_info info;
  std::memset(&info, 0, sizeof info);
  info.dlpi_addr = g_image.bias;
  info.dlpi_name = HEAPSIGHT_LIBUNWIND_PATH;
  info.dlpi_phdr = g_image.phdr;
  info.dlpi_phnum = static_cast<ElfW(Half)>(g_image.phnum);
  info.dlpi_adds = c.adds;
  info.dlpi_subs = c.subs;
  return callback(&info, sizeof info, data);
}

// Its sigprocmask: nothing (proc24, 2026-12-07). libunwind (built with
// CONFIG_BLOCK_SIGNALS) blocks every signal around its register-state
// cache lock and its dl_iterate_phdr call, four rt_sigprocmask calls per
// step on an unwind-cache miss: 328 of a traced `sort`'s 660 system calls.
// The blocking guards against a signal handler unwinding on the same
// thread while the interrupted frame holds that lock. Our copy has no such
// caller: every call into it is made by a hook under the thread's reentry
// guard (fork_gate.h), so a handler's malloc landing meanwhile goes straight
// to the real allocator and never unwinds; the leak scan's stop signal
// parks the thread in a handler that calls neither libunwind nor the
// loader. The host's own libunwind, if any, is a different copy and keeps
// its blocking. What is given up: a handler that longjmps out of a hook
// interrupted inside libunwind's critical section now leaves its lock held
// (as it would leave heapsight's own hook state, shard locks included).
int PrivateSigprocmask(int, const sigset_t*, sigset_t* old) {
  if (old != nullptr) std::memset(old, 0, sizeof *old);  // never read back but by us
  return 0;
}

// Its anonymous memory (the trace cache unw_backtrace maps, 256 KiB per
// unwinding thread, and its memory pools) is heapsight's own: taken from
// PageAlloc, it is registered (CopyOwnRegions), so the leak scan neither
// reads it as a root nor takes its words for the program's pointers, and
// HEAPSIGHT_STATS counts it. Before, every exit scan copied and searched a
// traced process's 256 KiB cache (4 process_vm_readv calls of 64 KiB in a
// traced `wc -l`). Other mappings (its ELF reader maps files read-only) go
// to the system as they are.
//
// Bytes of PageAlloc memory the copy holds now (HEAPSIGHT_STATS, tests: a
// thread's unw_backtrace trace cache is 256 KiB of it, unwinder.h).
std::atomic<size_t> g_private_mapped{0};
std::atomic<size_t> g_private_peak{0};  // g_private_mapped's most

void* PrivateMmap(void* addr, size_t len, int prot, int flags, int fd, off_t offset) {
  if (addr == nullptr && fd == -1 && offset == 0 && prot == (PROT_READ | PROT_WRITE) &&
      flags == (MAP_PRIVATE | MAP_ANONYMOUS)) {
    void* p = PageAlloc(len);
    if (p == nullptr) return MAP_FAILED;  // errno as mmap left it
    size_t now = g_private_mapped.fetch_add(len, std::memory_order_relaxed) + len;
    size_t peak = g_private_peak.load(std::memory_order_relaxed);
    while (now > peak &&
           !g_private_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    return p;
  }
  return mmap(addr, len, prot, flags, fd, offset);
}
int PrivateMunmap(void* p, size_t len) {
  if (PageFreeIfOwn(p, len)) {
    g_private_mapped.fetch_sub(len, std::memory_order_relaxed);
    return 0;
  }
  return munmap(p, len);
}

void* PrivateMalloc(size_t n) { return g_real.malloc(n); }
void PrivateFree(void* p) { g_real.free(p); }

// liblzma serves only MiniDebugInfo (.gnu_debugdata, for symbol names),
// which unwinding never reads: these fail as a corrupt section would
// (LZMA_PROG_ERROR), so no liblzma is loaded.
int LzmaFail() { return 11; }
uint64_t LzmaZero() { return 0; }
void LzmaNothing() {}

struct Binding {
  const char* name;
  void* to;
};
const Binding kBindings[] = {
    {"__tls_get_addr", reinterpret_cast<void*>(&PrivateTlsGetAddr)},
    {"dl_iterate_phdr", reinterpret_cast<void*>(&PrivateIteratePhdr)},
    {"malloc", reinterpret_cast<void*>(&PrivateMalloc)},
    {"free", reinterpret_cast<void*>(&PrivateFree)},
    {"sigprocmask", reinterpret_cast<void*>(&PrivateSigprocmask)},
    {"mmap", reinterpret_cast<void*>(&PrivateMmap)},
    {"munmap", reinterpret_cast<void*>(&PrivateMunmap)},
    {"lzma_stream_footer_decode", reinterpret_cast<void*>(&LzmaFail)},
    {"lzma_index_buffer_decode", reinterpret_cast<void*>(&LzmaFail)},
    {"lzma_stream_buffer_decode", reinterpret_cast<void*>(&LzmaFail)},
    {"lzma_index_size", reinterpret_cast<void*>(&LzmaZero)},
    {"lzma_index_uncompressed_size", reinterpret_cast<void*>(&LzmaZero)},
    {"lzma_index_end", reinterpret_cast<void*>(&LzmaNothing)},
};

// --- Loading ------------------------------------------------------------------

bool ReadAt(int fd, void* out, size_t size, off_t offset) {
  auto* p = static_cast<char*>(out);
  while (size > 0) {
    ssize_t n = pread(fd, p, size, offset);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return true;
}

struct Dynamic {
  const ElfW(Sym)* symtab = nullptr;
  size_t symcount = 0;
  const char* strtab = nullptr;
  size_t strsz = 0;
  const ElfW(Rela)* rela = nullptr;
  size_t relasz = 0;
  const ElfW(Rela)* jmprel = nullptr;
  size_t pltrelsz = 0;
};

// The value a symbol reference of the copy binds to; false if none (an
// undefined non-weak symbol that nothing defines).
bool Bind(const Dynamic& d, const ElfW(Sym)& sym, uintptr_t* value) {
  if (ELF64_ST_TYPE(sym.st_info) == STT_GNU_IFUNC) return false;
  if (sym.st_shndx != SHN_UNDEF) {
    *value = g_image.bias + sym.st_value;
    return true;
  }
  if (sym.st_name >= d.strsz) return false;
  const char* name = d.strtab + sym.st_name;
  for (const Binding& b : kBindings) {
    if (std::strcmp(name, b.name) == 0) {
      *value = reinterpret_cast<uintptr_t>(b.to);
      return true;
    }
  }
  if (void* own = UnwindValidationFunction(name); own != nullptr) {
    *value = reinterpret_cast<uintptr_t>(own);
    return true;
  }
  // As the loader would bind it: the first definition in the process.
  void* p = dlsym(RTLD_DEFAULT, name);
  if (p == nullptr && ELF64_ST_BIND(sym.st_info) != STB_WEAK) return false;
  *value = reinterpret_cast<uintptr_t>(p);
  return true;
}

bool Relocate(const Dynamic& d, const ElfW(Rela)* table, size_t bytes) {
  for (size_t i = 0; i < bytes / sizeof(ElfW(Rela)); ++i) {
    const ElfW(Rela)& r = table[i];
    auto* slot = reinterpret_cast<uint64_t*>(g_image.bias + r.r_offset);
    if (reinterpret_cast<uintptr_t>(slot) < g_image.begin ||
        reinterpret_cast<uintptr_t>(slot) + 8 > g_image.end) {
      return false;
    }
    uint32_t type = ELF64_R_TYPE(r.r_info);
    size_t index = ELF64_R_SYM(r.r_info);
    if (type == R_X86_64_NONE) continue;
    if (type == R_X86_64_RELATIVE) {
      *slot = g_image.bias + static_cast<uint64_t>(r.r_addend);
      continue;
    }
    if (index >= d.symcount) return false;
    const ElfW(Sym)& sym = d.symtab[index];
    uintptr_t value = 0;
    switch (type) {
      case R_X86_64_DTPMOD64:
        *slot = 1;  // any: PrivateTlsGetAddr knows one block, ours
        break;
      case R_X86_64_DTPOFF64:
        *slot = sym.st_value + static_cast<uint64_t>(r.r_addend);
        break;
      case R_X86_64_GLOB_DAT:
      case R_X86_64_JUMP_SLOT:
        if (!Bind(d, sym, &value)) return false;
        *slot = value;
        break;
      case R_X86_64_64:
        if (!Bind(d, sym, &value)) return false;
        *slot = value + static_cast<uint64_t>(r.r_addend);
        break;
      default:
        return false;  // TPOFF, COPY, IRELATIVE...: not a libunwind we know
    }
  }
  return true;
}

int Protection(uint32_t flags) {
  return ((flags & PF_R) != 0 ? PROT_READ : 0) | ((flags & PF_W) != 0 ? PROT_WRITE : 0) |
         ((flags & PF_X) != 0 ? PROT_EXEC : 0);
}

// The whole load; false (image left unused) on anything unexpected.
bool Load(int fd) {
  ElfW(Ehdr) eh;
  if (!ReadAt(fd, &eh, sizeof eh, 0) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_type != ET_DYN || eh.e_machine != EM_X86_64 ||
      eh.e_phentsize != sizeof(ElfW(Phdr)) || eh.e_phnum == 0 || eh.e_phnum > kMaxPhdrs ||
      eh.e_shentsize != sizeof(ElfW(Shdr)) || eh.e_shnum > kMaxShdrs) {
    return false;
  }
  ElfW(Phdr) ph[kMaxPhdrs];
  if (!ReadAt(fd, ph, eh.e_phnum * sizeof(ElfW(Phdr)), static_cast<off_t>(eh.e_phoff))) {
    return false;
  }
  long page = sysconf(_SC_PAGESIZE);
  auto page_mask = static_cast<uintptr_t>(page > 0 ? page : 4096) - 1;
  uintptr_t span = 0;
  const ElfW(Phdr)* dynamic = nullptr;
  const ElfW(Phdr)* relro = nullptr;
  bool header_loaded = false;
  for (int i = 0; i < eh.e_phnum; ++i) {
    const ElfW(Phdr)& p = ph[i];
    if (p.p_type == PT_LOAD) {
      if (p.p_filesz > p.p_memsz || (p.p_vaddr & page_mask) != (p.p_offset & page_mask)) {
        return false;
      }
      span = std::max<uintptr_t>(span, (p.p_vaddr + p.p_memsz + page_mask) & ~page_mask);
      if (p.p_offset == 0 && p.p_vaddr == 0 &&
          p.p_filesz >= eh.e_phoff + eh.e_phnum * sizeof(ElfW(Phdr))) {
        header_loaded = true;
      }
    } else if (p.p_type == PT_DYNAMIC) {
      dynamic = &p;
    } else if (p.p_type == PT_GNU_RELRO) {
      relro = &p;
    } else if (p.p_type == PT_TLS) {
      if (p.p_filesz != 0 || p.p_memsz > kTlsBytes || p.p_align > kTlsAlign) {
        return false;
      }
    }
  }
  if (span == 0 || span > (64u << 20) || dynamic == nullptr || !header_loaded) return false;
  // Zeroed, registered as heapsight's own memory (never a leak-scan root).
  auto* base = static_cast<unsigned char*>(PageAlloc(span));
  if (base == nullptr) return false;
  g_image.bias = reinterpret_cast<uintptr_t>(base);
  g_image.begin = g_image.bias;
  g_image.end = g_image.bias + span;
  for (int i = 0; i < eh.e_phnum; ++i) {
    const ElfW(Phdr)& p = ph[i];
    if (p.p_type == PT_LOAD &&
        !ReadAt(fd, base + p.p_vaddr, p.p_filesz, static_cast<off_t>(p.p_offset))) {
      return false;
    }
  }
  g_image.phdr = reinterpret_cast<const ElfW(Phdr)*>(base + eh.e_phoff);
  g_image.phnum = eh.e_phnum;

  // The dynamic symbol table's size, from its section header.
  Dynamic d;
  ElfW(Shdr) sh[kMaxShdrs];
  if (!ReadAt(fd, sh, eh.e_shnum * sizeof(ElfW(Shdr)), static_cast<off_t>(eh.e_shoff))) {
    return false;
  }
  for (int i = 0; i < eh.e_shnum; ++i) {
    if (sh[i].sh_type == SHT_DYNSYM && sh[i].sh_entsize == sizeof(ElfW(Sym))) {
      d.symcount = sh[i].sh_size / sizeof(ElfW(Sym));
    }
  }
  int pltrel = DT_RELA;
  for (auto* dyn = reinterpret_cast<const ElfW(Dyn)*>(base + dynamic->p_vaddr);
       dyn->d_tag != DT_NULL; ++dyn) {
    uintptr_t ptr = g_image.bias + dyn->d_un.d_ptr;
    switch (dyn->d_tag) {
      case DT_SYMTAB: d.symtab = reinterpret_cast<const ElfW(Sym)*>(ptr); break;
      case DT_STRTAB: d.strtab = reinterpret_cast<const char*>(ptr); break;
      case DT_STRSZ: d.strsz = dyn->d_un.d_val; break;
      case DT_RELA: d.rela = reinterpret_cast<const ElfW(Rela)*>(ptr); break;
      case DT_RELASZ: d.relasz = dyn->d_un.d_val; break;
      case DT_JMPREL: d.jmprel = reinterpret_cast<const ElfW(Rela)*>(ptr); break;
      case DT_PLTRELSZ: d.pltrelsz = dyn->d_un.d_val; break;
      case DT_PLTREL: pltrel = static_cast<int>(dyn->d_un.d_val); break;
      // Code that would have to run at load: not a libunwind we know.
      case DT_INIT: case DT_INIT_ARRAY: case DT_PREINIT_ARRAY: case DT_TEXTREL: return false;
      default: break;
    }
  }
  if (d.symtab == nullptr || d.strtab == nullptr || d.symcount == 0 || pltrel != DT_RELA) {
    return false;
  }
  if ((d.rela != nullptr && !Relocate(d, d.rela, d.relasz)) ||
      (d.jmprel != nullptr && !Relocate(d, d.jmprel, d.pltrelsz))) {
    return false;
  }
  // Final protections: each segment's own, then RELRO read-only.
  for (int i = 0; i < eh.e_phnum; ++i) {
    const ElfW(Phdr)& p = ph[i];
    if (p.p_type != PT_LOAD) continue;
    uintptr_t lo = (g_image.bias + p.p_vaddr) & ~page_mask;
    uintptr_t hi = (g_image.bias + p.p_vaddr + p.p_memsz + page_mask) & ~page_mask;
    if (mprotect(reinterpret_cast<void*>(lo), hi - lo, Protection(p.p_flags)) != 0) return false;
  }
  if (relro != nullptr) {
    uintptr_t lo = (g_image.bias + relro->p_vaddr) & ~page_mask;
    uintptr_t hi = (g_image.bias + relro->p_vaddr + relro->p_memsz) & ~page_mask;
    if (hi > lo && mprotect(reinterpret_cast<void*>(lo), hi - lo, PROT_READ) != 0) return false;
  }
  // Our trampolines' targets.
  void* targets[7] = {};
  for (size_t i = 0; i < d.symcount; ++i) {
    const ElfW(Sym)& sym = d.symtab[i];
    if (sym.st_shndx == SHN_UNDEF || ELF64_ST_TYPE(sym.st_info) != STT_FUNC ||
        sym.st_name >= d.strsz) {
      continue;
    }
    for (int k = 0; k < 7; ++k) {
      if (std::strcmp(d.strtab + sym.st_name, kExports[k]) == 0) {
        targets[k] = reinterpret_cast<void*>(g_image.bias + sym.st_value);
      }
    }
  }
  for (void* t : targets) {
    if (t == nullptr) return false;
  }
  for (int k = 0; k < 7; ++k) {
    __atomic_store_n(&heapsight_unw_slots[k], targets[k], __ATOMIC_RELEASE);
  }
  return true;
}

}  // namespace

bool LoadPrivateLibunwind() {
  int state = g_state.load(std::memory_order_acquire);
  if (state >= 2) return state == 2;
  int expected = 0;
  if (!g_state.compare_exchange_strong(expected, 1)) {
    while ((state = g_state.load(std::memory_order_acquire)) == 1) sched_yield();
    return state == 2;
  }
  ErrnoKeeper keep_errno;
  NoCancel no_cancel;  // open/pread/close are cancellation points
  int fd = open(HEAPSIGHT_LIBUNWIND_PATH, O_RDONLY | O_CLOEXEC);
  bool ok = fd >= 0 && Load(fd);
  if (fd >= 0) close(fd);
  if (!ok && !g_options.QUIET) {
    RawBuffer b;
    b.Str("cannot load ").Str(HEAPSIGHT_LIBUNWIND_PATH).Str(
        " privately; stacks are taken by walking frame pointers (as HEAPSIGHT_UNWIND=fp)");
    RawLog(b);
  }
  g_state.store(ok ? 2 : 3, std::memory_order_release);
  return ok;
}

size_t PrivateLibunwindMappedBytes() { return g_private_mapped.load(std::memory_order_relaxed); }
size_t PrivateLibunwindPeakBytes() { return g_private_peak.load(std::memory_order_relaxed); }

void PrivateLibunwindRange(uintptr_t* begin, uintptr_t* end) {
  bool loaded = g_state.load(std::memory_order_acquire) == 2;
  *begin = loaded ? g_image.begin : 0;
  *end = loaded ? g_image.end : 0;
}

}  // namespace heapsight::preload
