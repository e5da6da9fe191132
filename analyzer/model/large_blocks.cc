// analyzer/model/large_blocks.cc: see large_blocks.h.
#include "analyzer/model/large_blocks.h"

#include <malloc.h>

namespace heapsight::analyzer {

bool UseMmapForLargeBlocks() {
  // Setting either threshold turns glibc's dynamic adjustment off. Both are
  // set: a free of a mapped block before this call may have raised the
  // trim threshold too, and a heap's free top above it would then serve
  // large blocks (malloc maps only what the top cannot hold).
  bool set = mallopt(M_MMAP_THRESHOLD, static_cast<int>(kLargeBlockBytes)) == 1 &&
             mallopt(M_TRIM_THRESHOLD, static_cast<int>(kLargeBlockBytes)) == 1;
  // The new trim threshold applies at the next free; a free top held now
  // goes back now.
  malloc_trim(0);
  return set;
}

}  // namespace heapsight::analyzer
