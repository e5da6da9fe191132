// preload/cxx_runtime.h: the host's C++ runtime, borrowed when operator new
// fails.
//
// libheapsight.so links no C++ runtime (no libstdc++, so a C program traced
// by heapsight does not load one, nor its 72 KiB emergency pool; issue 14).
// But the operator new hooks must behave like libstdc++'s when memory runs
// out: call the program's new-handler, throw std::bad_alloc, and in the
// nothrow forms catch whatever the handler throws. A program whose operator
// new reaches our hooks has a C++ runtime loaded (libstdc++ or libc++), so
// these pieces are taken from it, by symbol name, the first time an
// allocation fails:
//   std::get_new_handler()        _ZSt15get_new_handlerv
//   std::__throw_bad_alloc()      _ZSt17__throw_bad_allocv
//   operator new(size_t, nothrow) _ZnwmRKSt9nothrow_t, and its aligned form
//     _ZnwmSt11align_val_tRKSt9nothrow_t: the runtime's own nothrow new is
//     `try { return ::operator new(n); } catch (...) { return nullptr; }`,
//     and its ::operator new is our throwing hook; so it is the catch block
//     we cannot write (new_delete_hooks.cc).
// The runtime is found in the process's link map (a library named
// libstdc++.so* or libc++.so*, whether loaded globally or RTLD_LOCAL), and
// each symbol is looked up in that library only: no failed dlsym, so the
// program's dlerror() state never changes.
//
// Constraints: called only on an allocation's failure path, outside the
// reentry guard and with no lock of ours held; the first call takes the
// loader lock (dlinfo, dlopen RTLD_NOLOAD, dlsym) and may allocate inside
// the loader. Thread-safe (atomics; racing first calls resolve twice, with
// the same answer). Not async-signal-safe.
#ifndef HEAPSIGHT_PRELOAD_CXX_RUNTIME_H_
#define HEAPSIGHT_PRELOAD_CXX_RUNTIME_H_

#include <cstddef>
#include <new>

namespace heapsight::preload {

// The program's current new-handler, or nullptr (also without a runtime).
std::new_handler HostNewHandler();

// Throws std::bad_alloc with the runtime's own thrower. Without a C++
// runtime (which no caller of operator new can lack), logs one line and
// aborts.
[[noreturn]] void ThrowBadAlloc();

// The runtime's nothrow operator new: plain when alignment is 0, else the
// aligned one. nullptr if there is none.
using NothrowNew = void* (*)(size_t, const std::nothrow_t&);
using NothrowNewAligned = void* (*)(size_t, std::align_val_t, const std::nothrow_t&);
NothrowNew HostNothrowNew();
NothrowNewAligned HostNothrowNewAligned();

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_CXX_RUNTIME_H_
