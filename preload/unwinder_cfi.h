// preload/unwinder_cfi.h: a frame's unwind rule at one return address, read
// from the module's DWARF call frame information (.eh_frame).
//
// The unwind cache (unwind_cache.h) steps through the frames above the
// first one it already knows with these rules, at a few nanoseconds a frame
// once a return address's rule is cached, instead of through libunwind's
// cursor (about 400 ns a frame on Debian 12). Only the rules whose result
// is a function of rsp, rbp and the stack words at fixed offsets from the
// CFA are accepted, the shapes an x86-64 compiler emits for ordinary
// functions:
//   CFA = rsp + k or rbp + k;
//   the return address at CFA - 8;
//   rbp unchanged, or saved at CFA + m.
// Anything else (a CFA or register given by a DWARF expression, as in a
// realigned frame or a PLT entry; a signal frame ('S' augmentation); rbp or
// the return address in another register; 64-bit DWARF; encodings other
// than the ones GCC and Clang use) is refused (kRefused), and the caller
// unwinds that event with libunwind. A return address whose rule marks it
// undefined ends the stack (kEnd: glibc's clone and _start), as it ends
// libunwind's.
//
// The FDE is found with glibc's _dl_find_object (lock-free) and the
// module's .eh_frame_hdr binary-search table; the CFA program is run up to
// the return address minus one (inside the call instruction), as libunwind
// does for every frame but a signal frame's successor.
//
// Constraints: no malloc, no locks, no syscalls (_dl_find_object takes no
// lock in glibc >= 2.35); async-signal-safe. Reads only the module's
// mapped .eh_frame_hdr and .eh_frame, within the lengths they give.
#ifndef HEAPSIGHT_PRELOAD_UNWINDER_CFI_H_
#define HEAPSIGHT_PRELOAD_UNWINDER_CFI_H_

#include <cstdint>

namespace heapsight::preload {

struct FrameRule {
  enum Kind : uint8_t {
    kRefused = 0,  // not one of the shapes above: unwind with libunwind
    kRsp = 1,      // CFA = rsp + cfa_offset
    kRbp = 2,      // CFA = rbp + cfa_offset
  };
  uint8_t kind = kRefused;
  bool end = false;        // return address undefined: the outermost frame
  bool rbp_saved = false;  // the caller's rbp is at CFA + rbp_offset
  int32_t cfa_offset = 0;
  int32_t rbp_offset = 0;
};

// The rule for the frame whose return address (or, for the first frame,
// the address execution resumes at after the call) is `return_address`.
FrameRule FindFrameRule(uintptr_t return_address);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_UNWINDER_CFI_H_
