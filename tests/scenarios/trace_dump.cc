// tests/scenarios/trace_dump.cc: prints every record of a trace, one per
// line (debugging aid for the scenario tests; the analyzer has the real
// dump command).
#include <cinttypes>
#include <cstdio>

#include "tests/scenarios/scenario_util.h"
#include "tests/support/run_traced.h"

namespace hs = heapsight;

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    hs::testing::TraceContents t = hs::testing::ReadTrace(argv[i]);
    std::printf("== %s pid=%" PRIu64 " ppid=%" PRIu64 " flags=%u records=%zu nodes=%zu%s%s%s%s\n",
                argv[i], t.header.pid, t.header.ppid, t.header.flags, t.records.size(),
                t.stack_nodes.size(), t.truncated ? " TRUNCATED" : "",
                t.complete ? " complete" : " INCOMPLETE", t.error.empty() ? "" : " error: ",
                t.error.c_str());
    for (const auto& r : t.records) {
      std::printf("t=%" PRIu64 " tag=%d api=%d size=%" PRIu64 " id=%" PRIx64 " old=%" PRIx64
                  " stack=%" PRIu64 "\n",
                  r.time_us, static_cast<int>(r.tag), static_cast<int>(r.api), r.size, r.id,
                  r.old_id, r.stack);
    }
    hs::testing::TraceCounts c = hs::testing::CountTrace(t);
    std::printf("allocs=%" PRIu64 " frees=%" PRIu64 " reallocs=%" PRIu64 " failed=%" PRIu64
                " live=%" PRIu64 " unmatched(file order)=%" PRIu64 " unpaired=%" PRIu64 "\n",
                c.alloc_records, c.free_records, c.realloc_records, c.failed, c.live_blocks,
                c.unmatched_frees, hs::testing::UnpairedFrees(t));
  }
  return 0;
}
