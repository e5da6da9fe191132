// preload/private_libunwind.h: libunwind, loaded so that it leaves no
// trace in the host (issue 14 fault 4).
//
// Debian 12's libunwind.a is not position-independent, so libunwind cannot
// be linked into libheapsight.so; as a DT_NEEDED library, libunwind.so.8
// (and liblzma.so.5) would be loaded into every traced program, with a TLS
// module of its own: each thread's DTV one slot longer, and every thread
// creation 16 bytes more of calloc. So libheapsight.so does not link it:
// this file loads libunwind.so.8 itself, once, into anonymous memory (its
// PT_LOAD segments copied, not mapped from the file), and relocates it:
//   - its own symbols bind inside it;
//   - its one TLS block (16 bytes: unw_backtrace's per-thread cache) is a
//     16-byte area of our own TLS: its __tls_get_addr calls get that area;
//   - pipe2, read, close, syscall and write get the fd-free memory
//     validation of unwind_validation.h;
//   - dl_iterate_phdr also reports the private copy (after the process's
//     objects), so libunwind finds the unwind tables of its own frames;
//   - liblzma's functions (MiniDebugInfo) are our static, hidden liblzma;
//   - malloc and free are the real allocator's (libunwind calls them only
//     for .debug_frame sections, never on a backtrace through .eh_frame);
//   - everything else is the process's definition (dlsym(RTLD_DEFAULT)), as
//     the loader would have bound it.
// The loader never sees the copy: no link_map, no module in
// dl_iterate_phdr for the program or for our module map, no TLS module.
// libunwind 1.6 has no constructors (no DT_INIT, no DT_INIT_ARRAY); a
// build that has some, or TLS data other than 16 zero bytes, or
// relocations of other kinds, is refused (one warning; the recorder then
// walks frame pointers, lifecycle.cc).
//
// The functions of libunwind that the preload calls (unw_backtrace, the
// _UL* cursor functions, unw_getcontext) are defined in libheapsight.so as
// one-instruction jumps through a table this file fills in (a jump, not a
// call: unw_getcontext must see its caller's registers and return address).
// Until the table is filled, they fail (no frames).
//
// Constraints: LoadPrivateLibunwind runs once, from StartTracing, under the
// reentry guard: it opens and reads the file (an fd for the duration),
// mmaps, and takes the loader lock (dlsym); no malloc. The dl_iterate_phdr
// and __tls_get_addr replacements are async-signal-safe as far as the
// real dl_iterate_phdr is, allocate nothing and take no lock of ours.
#ifndef HEAPSIGHT_PRELOAD_PRIVATE_LIBUNWIND_H_
#define HEAPSIGHT_PRELOAD_PRIVATE_LIBUNWIND_H_

#include <cstddef>
#include <cstdint>

namespace heapsight::preload {

// Loads and binds libunwind (HEAPSIGHT_LIBUNWIND_PATH, set by the build),
// once; true if the unwinder is usable. Later calls return the first
// answer.
bool LoadPrivateLibunwind();

// Anonymous memory the private copy has mapped and not returned (its
// memory pools, and each thread's unw_backtrace trace cache: 256 KiB).
size_t PrivateLibunwindMappedBytes();
// The most it held at once.
size_t PrivateLibunwindPeakBytes();

// The private copy's address range (0, 0 when not loaded).
void PrivateLibunwindRange(uintptr_t* begin, uintptr_t* end);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_PRIVATE_LIBUNWIND_H_
