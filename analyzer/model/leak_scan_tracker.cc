// analyzer/model/leak_scan_tracker.cc: see leak_scan_tracker.h.
#include "analyzer/model/leak_scan_tracker.h"

namespace heapsight::analyzer {

bool LeakScanTracker::Accept(uint64_t scan) {
  if (scan < newest_) return false;  // an older scan read late
  if (scan > newest_) {
    classes_.clear();  // a newer scan replaces every class of the older one
    cursor_.clear();
    newest_ = scan;
  }
  return true;
}

bool LeakScanTracker::OnLeakScan(const format::Record::LeakScanFields& l,
                                 LeakClassData* header) {
  if (!Accept(l.scan)) return false;
  header->scanned = true;
  header->scan = l.scan;
  header->reason = l.reason;
  header->duration_us = l.duration_us;
  header->threads_stopped = l.threads_stopped;
  header->threads_missed = l.threads_missed;
  header->root_bytes = l.root_bytes;
  return true;
}

void LeakScanTracker::OnBlockClasses(const format::Record::BlockClassesFields& b) {
  if (!Accept(b.scan)) return;
  classes_.reserve(classes_.size() + b.ids.size());  // one resize a record at most
  for (uint64_t id : b.ids) classes_[id] = static_cast<uint8_t>(b.leak_class);
}

void LeakScanTracker::OnCompactBlockClasses(const format::Record::BlockClassesFields& b,
                                            const CompactFreeIndex& live) {
  if (b.stacks.size() != b.ids.size() || b.sizes.size() != b.ids.size()) {
    OnBlockClasses(b);
    return;
  }
  if (!Accept(b.scan)) return;
  for (size_t i = 0; i < b.ids.size(); ++i) {
    size_t& n = cursor_[{b.stacks[i], b.sizes[i]}];
    uint64_t id;
    if (live.Peek(b.stacks[i], b.sizes[i], n, &id)) classes_[id] = static_cast<uint8_t>(b.leak_class);
    ++n;
  }
}

}  // namespace heapsight::analyzer
