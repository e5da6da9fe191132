// analyzer/symbols/function_buckets.h: the function symbol containing an
// address, from a large table's candidates grouped by address, before (and
// without) sorting the whole table.
//
// The run-time classification of a new call site asks for the function
// names of its innermost frames (runtime_filter.h) from the first
// allocation on. node's binary has 110 k function symbols, and sorting
// them (PickPackedFunctionSymbols) held the pass for about 10 ms at its
// start, on the analysing thread, for the thousand addresses the pass asks
// about. Here the candidates are put into buckets of about four by address
// (a counting sort: three passes over them in table order, about 6 M
// instructions for node's), a bucket is sorted when a lookup
// first reaches it, and a lookup answers what FindFunctionSymbol over
// PickPackedFunctionSymbols' table answers, while that table is sorted on
// another thread for the report's symbolization.
//
// One case needs the sorted table: the symbol found has aliases equal in
// start, rank and end under other names (node's binary: 250 such starts,
// libc's 93). Which of them the table keeps is std::sort's choice over the
// whole table (function_table.h), so Find reports kTied with the aliases'
// names, and the caller (symbolizer.cc) either takes any of them, where what
// it asks of the name cannot tell them apart, or waits for the sorted table.
#ifndef HEAPSIGHT_ANALYZER_SYMBOLS_FUNCTION_BUCKETS_H_
#define HEAPSIGHT_ANALYZER_SYMBOLS_FUNCTION_BUCKETS_H_

#include <cstdint>
#include <vector>

#include "analyzer/symbols/function_table.h"

namespace heapsight::analyzer {

class FunctionBuckets {
 public:
  // Over `table`'s candidates (copied: the table itself goes to the sort).
  explicit FunctionBuckets(const PackedFunctionTable& table);

  enum class Found : uint8_t {
    kName,  // *name is FindFunctionSymbol's answer over the sorted table (or
            // an alias's copy of the same string)
    kNone,  // no symbol contains the address (FindFunctionSymbol: null)
    kTied,  // the answer is one of several aliases: ask the sorted table
  };
  // FindFunctionSymbol(PickPackedFunctionSymbols(table), addr), or kTied
  // with the aliases' names (each distinct name once, the table's answer
  // among them) in *aliases if not null. Sorts the buckets it looks into
  // on the first look (not thread-safe).
  Found Find(uint64_t addr, const char** name, std::vector<const char*>* aliases = nullptr);

  size_t buckets_sorted() const { return buckets_sorted_; }

 private:
  size_t BucketOf(uint64_t start) const {
    if (start <= base_) return 0;
    uint64_t b = (start - base_) >> shift_;
    return b >= bucket_count_ ? bucket_count_ - 1 : static_cast<size_t>(b);
  }
  // Sorts bucket b's candidates by key, once.
  void SortBucket(size_t b);

  const char* strings_;
  uint64_t base_ = 0;  // the lowest start
  int shift_ = 0;      // a bucket holds starts [base_ + b << shift_, base_ + (b + 1) << shift_)
  size_t bucket_count_ = 0;
  std::vector<uint32_t> first_;                  // bucket b: candidates_[first_[b], first_[b + 1])
  std::vector<PackedFunctionCandidate> candidates_;  // by bucket
  std::vector<bool> sorted_;
  size_t buckets_sorted_ = 0;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_SYMBOLS_FUNCTION_BUCKETS_H_
