// analyzer/model/leak_scan_tracker.h: the one rule for which leak scan's
// results a trace's leak classes come from, shared by the analysis of a
// finished trace (trace_model.cc, records in time order) and the live
// analysis of a growing one (live_process.cc, chunks in file order), so
// that `heapsight leaks` and `record --serve`'s /debug/heapsight/leaks and
// /metrics agree on the same records.
//
// The rule: the newest scan counts, newest by its number (scans are
// numbered 1, 2, ... per process in the order they finish,
// docs/trace-format.md "Leak scans"), whatever order its records are read
// in. A record of an older scan read after any record of a newer one (a
// kLeakScan or a kBlockClasses: another thread's chunk can bring a newer
// scan's classes before its kLeakScan header) is ignored: neither its
// header nor its classes replace or mix with the newer scan's. A
// kBlockClasses of a newer scan read before that scan's kLeakScan starts
// the new scan's classes (the old ones are dropped); the header fields
// (LeakClassData::scanned, scan, reason, ...) come only from a kLeakScan.
//
// Memory: one entry per block the newest scan classified; Forget() drops a
// block freed since (ids are never reused, so keeping it is also correct).
#ifndef HEAPSIGHT_ANALYZER_MODEL_LEAK_SCAN_TRACKER_H_
#define HEAPSIGHT_ANALYZER_MODEL_LEAK_SCAN_TRACKER_H_

#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "analyzer/model/compact_free_index.h"
#include "analyzer/model/leak_class_data.h"
#include "format/chunk_decoder.h"
#include "format/trace_format.h"

namespace heapsight::analyzer {

class LeakScanTracker {
 public:
  // A kLeakScan record. Returns true when it is the newest scan's header
  // and was copied into `header`'s scan fields; false when a newer scan's
  // record was read before (it is then ignored).
  bool OnLeakScan(const format::Record::LeakScanFields& l, LeakClassData* header);

  // A kBlockClasses record: its blocks' class, kept when its scan is the
  // newest so far.
  void OnBlockClasses(const format::Record::BlockClassesFields& b);

  // A compact trace's kBlockClasses (docs/trace-format.md, compact frees):
  // the preload's ids name its exact blocks, not necessarily the ones the
  // compact frees left live in the analysis, so each listed block's class
  // goes to one of our live blocks of the same stack and size instead, the
  // n-th listed to the n-th oldest in `live`, and per-stack class counts and
  // bytes match the scan. Records without stacks fall back to ids.
  void OnCompactBlockClasses(const format::Record::BlockClassesFields& b,
                             const CompactFreeIndex& live);
  // Block `id` was freed: it is no leak of any scan.
  void Forget(uint64_t id) {
    if (!classes_.empty()) classes_.erase(id);
  }

  // The newest scan number read (from either record kind; 0: none).
  uint64_t newest_scan() const { return newest_; }

  // Adds the newest scan's classes of the blocks still live into
  // header->sites. find(id, &stack, &api, &size) returns whether block id
  // is live and, if so, its site and size.
  template <typename FindFn>
  void AddLiveClasses(LeakClassData* header, FindFn&& find) const {
    ForEachClassified([&](uint64_t id, LeakClass cls) {
      uint64_t stack = 0, size = 0;
      format::Api api = format::Api::kUnknown;
      if (!find(id, &stack, &api, &size)) return;
      header->sites[{stack, static_cast<uint8_t>(api)}][cls] += ClassCounts{size, 1};
    });
  }

  // Calls f(id, class) for each block of the newest scan with a class, in
  // the order AddLiveClasses adds them (header->sites' insertion order,
  // which its iteration order may depend on), for callers that look the
  // blocks up ahead of adding them.
  template <typename F>
  void ForEachClassified(F&& f) const {
    for (const auto& [id, cls] : classes_) {
      if (cls == 0 || cls > format::kLeakClassCount) continue;
      f(id, static_cast<LeakClass>(cls));
    }
  }

  // Blocks of the newest scan that have a class.
  size_t size() const { return classes_.size(); }

  // Drops the classes (after the end of a trace).
  void Clear() {
    classes_.clear();
    cursor_.clear();
  }

 private:
  // Makes `scan` the newest if it is newer; returns false if it is older.
  bool Accept(uint64_t scan);

  uint64_t newest_ = 0;
  absl::flat_hash_map<uint64_t, uint8_t> classes_;  // id -> LeakClass, newest scan
  // Compact traces: blocks of the newest scan given out per (stack, size).
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, size_t> cursor_;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_LEAK_SCAN_TRACKER_H_
