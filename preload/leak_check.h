// preload/leak_check.h: the leak scan of a live process: stop the other
// threads, gather the roots (module data, every thread's stack from its
// stack pointer up, its registers, static TLS, the thread control block and
// the DTV with the dynamic TLS blocks it owns, and every other writable
// mapping that is neither the allocator's nor heapsight's: memcheck's root
// set, docs/leak-classification.md), classify every live block
// with LeakClassifier (memcheck's rules, see leak_scan.h), resume the
// threads, and write kLeakScan + kBlockClasses records to the trace.
//
// Called at exit (FinishTrace, before the final flush, heap intact and other
// threads still alive) and on demand (RunLeakScan, for the in-program API
// or a signal). One scan at a time; a call while another scan runs returns
// false. With HEAPSIGHT_STATS each scan logs one line of its costs (blocks,
// time, memory).
//
// Constraints: no malloc (PageAlloc), the calling thread only takes its own
// trace-state lock, after the other threads have been resumed. While they
// are stopped the scan neither allocates nor locks nor calls the loader
// (module roots are collected before stopping). Not async-signal-safe: a
// signal handler must not call RunLeakScan directly.
#ifndef HEAPSIGHT_PRELOAD_LEAK_CHECK_H_
#define HEAPSIGHT_PRELOAD_LEAK_CHECK_H_

#include <cstdint>

#include "format/trace_format.h"

namespace heapsight::preload {

struct LeakScanResult {
  uint64_t scan = 0;  // scan number written to the trace (0: no scan)
  uint64_t blocks[format::kLeakClassCount] = {};  // program blocks per class (LeakClass - 1)
  uint64_t bytes[format::kLeakClassCount] = {};
  uint64_t duration_us = 0;
  uint64_t threads_stopped = 0;
  uint64_t threads_missed = 0;
};

// Scans now and records the result. False (nothing written) when tracing
// is off, HEAPSIGHT_LEAK_SCAN=0, another scan is running, or memory ran
// out. `result` may be null.
bool RunLeakScan(format::ScanReason reason, LeakScanResult* result = nullptr);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_LEAK_CHECK_H_
