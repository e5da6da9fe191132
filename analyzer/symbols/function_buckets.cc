// analyzer/symbols/function_buckets.cc: see function_buckets.h.
#include "analyzer/symbols/function_buckets.h"

#include <algorithm>
#include <cstring>

namespace heapsight::analyzer {

FunctionBuckets::FunctionBuckets(const PackedFunctionTable& table) : strings_(table.strings) {
  const std::vector<PackedFunctionCandidate>& packed = table.packed;
  if (packed.empty()) return;
  uint64_t lowest = UINT64_MAX;
  uint64_t highest = 0;
  for (const PackedFunctionCandidate& c : packed) {
    lowest = std::min(lowest, c.start());
    highest = std::max(highest, c.start());
  }
  base_ = lowest;
  // About four candidates a bucket where they spread evenly.
  const uint64_t target = std::max<uint64_t>(1, packed.size() / 4);
  while (((highest - lowest) >> shift_) >= target) ++shift_;
  bucket_count_ = static_cast<size_t>(((highest - lowest) >> shift_) + 1);
  // Counted, then placed (a counting sort by bucket, in table order).
  first_.assign(bucket_count_ + 1, 0);
  for (const PackedFunctionCandidate& c : packed) ++first_[BucketOf(c.start()) + 1];
  for (size_t b = 0; b < bucket_count_; ++b) first_[b + 1] += first_[b];
  std::vector<uint32_t> next(first_.begin(), first_.end() - 1);
  candidates_.resize(packed.size());
  for (const PackedFunctionCandidate& c : packed) candidates_[next[BucketOf(c.start())]++] = c;
  sorted_.assign(bucket_count_, false);
}

void FunctionBuckets::SortBucket(size_t b) {
  if (sorted_[b]) return;
  sorted_[b] = true;
  ++buckets_sorted_;
  // Any order of candidates equal in key will do: Find treats them as one
  // (kTied when their names differ).
  std::sort(candidates_.begin() + first_[b], candidates_.begin() + first_[b + 1],
            [](const PackedFunctionCandidate& x, const PackedFunctionCandidate& y) {
              return x.key < y.key;
            });
}

FunctionBuckets::Found FunctionBuckets::Find(uint64_t addr, const char** name,
                                             std::vector<const char*>* aliases) {
  if (candidates_.empty() || addr < base_) return Found::kNone;
  // The sorted table's symbols are the candidates of lowest key of each
  // start. Walked from the last start at or before `addr` down, as
  // FindFunctionSymbol scans back, over as many starts.
  int starts = 0;
  for (size_t b = BucketOf(addr) + 1; b-- > 0 && starts < kFunctionSymbolScanBack;) {
    if (first_[b] == first_[b + 1]) continue;
    SortBucket(b);
    const size_t lo = first_[b];
    size_t end = first_[b + 1];  // the candidates of the starts not walked yet: [lo, end)
    while (end > lo && starts < kFunctionSymbolScanBack) {
      const uint64_t start = candidates_[end - 1].start();
      size_t head = end - 1;  // the start's first candidate (lowest key)
      while (head > lo && candidates_[head - 1].start() == start) --head;
      const size_t group_end = end;
      end = head;
      if (start > addr) continue;
      ++starts;
      const PackedFunctionCandidate& symbol = candidates_[head];
      if (addr >= symbol.end()) continue;
      const char* found = strings_ + symbol.index;
      bool tied = false;
      for (size_t k = head + 1; k < group_end && candidates_[k].key == symbol.key; ++k) {
        if (std::strcmp(strings_ + candidates_[k].index, found) != 0) tied = true;
      }
      if (!tied) {
        *name = found;
        return Found::kName;
      }
      if (aliases != nullptr) {
        aliases->clear();
        for (size_t k = head; k < group_end && candidates_[k].key == symbol.key; ++k) {
          const char* alias = strings_ + candidates_[k].index;
          if (std::none_of(aliases->begin(), aliases->end(),
                           [&](const char* a) { return std::strcmp(a, alias) == 0; })) {
            aliases->push_back(alias);
          }
        }
      }
      return Found::kTied;
    }
  }
  return Found::kNone;
}

}  // namespace heapsight::analyzer
