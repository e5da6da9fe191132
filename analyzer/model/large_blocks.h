// analyzer/model/large_blocks.h: the analyzer's large blocks go back to the
// system when they are freed.
//
// glibc's malloc serves a block of at least M_MMAP_THRESHOLD bytes (128 KiB
// at start) with its own mmap, which free unmaps. But it raises that
// threshold to the size of any such block freed (up to 32 MiB), so from the
// first freed decoded chunk (1-2.6 MB of events) on, the decode workers'
// event arrays, hash tables' old slot arrays after a resize, and the debug
// info libelf decompresses all come from the heaps (one per thread that
// allocates: the decode workers each have their own). There, a freed block
// stays resident until the top of its heap is free, which in a worker's
// heap it seldom is: on a cc1plus trace, 19 MB of the workers' heaps and
// 48 MB of all heaps were free but resident when `report` had analyzed the
// trace (mallinfo2, 2026-12-06).
//
// UseMmapForLargeBlocks fixes the threshold (and the trim threshold, which
// glibc raises with it), so a block of kLargeBlockBytes or more is mapped on
// its own unless a heap's free top holds it (at most kLargeBlockBytes, as
// the heaps' free tops above that are returned): freeing it returns its
// pages at once, and growing it (realloc) moves page mappings (mremap)
// instead of copying into a fresh heap block. The decoded chunks are
// recycled (chunk_prefetcher.h), so the mmap and page faults it costs are
// paid per resize, not per chunk.
#ifndef HEAPSIGHT_ANALYZER_MODEL_LARGE_BLOCKS_H_
#define HEAPSIGHT_ANALYZER_MODEL_LARGE_BLOCKS_H_

#include <cstddef>

namespace heapsight::analyzer {

// glibc's own starting value of both thresholds, fixed.
inline constexpr size_t kLargeBlockBytes = 128 * 1024;

// Sets malloc's mmap threshold to kLargeBlockBytes for the whole process
// (the analyzer's commands call it before analyzing) and returns what the
// heaps hold free now (malloc_trim). Returns false when
// the C library refused (not glibc's malloc). Idempotent.
bool UseMmapForLargeBlocks();

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_LARGE_BLOCKS_H_
