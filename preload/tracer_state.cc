// preload/tracer_state.cc: see tracer_state.h.
//
// Constraints: no malloc, no locks; WarnOnce writes one raw line.
#include "preload/tracer_state.h"

#include "preload/raw_log.h"
#include "preload/trace_writer.h"

namespace heapsight::preload {

std::atomic<int> g_tracing_status{kUninit};
std::atomic<bool> g_partial_window{false};
Options g_options;
constinit LiveTable g_live_blocks;
constinit StackTable g_stack_table;
bool g_address_frees = false;

namespace {
std::atomic<bool> g_warned{false};
}  // namespace

void WarnOnce(const char* what, const char* path, int err) {
  if (g_warned.exchange(true) || g_options.QUIET) return;
  RawBuffer b;
  b.Str(what).Str(" ").Str(path).Str(": ").Str(ErrnoName(err)).Str(" (errno ").Num(err).Str(
      "); tracing disabled");
  RawLog(b);
}

void OnWriteError(int err) {
  g_tracing_status.store(kDisabled);
  WarnOnce("cannot write trace", TracePath(), err);
}

}  // namespace heapsight::preload
