// analyzer/model/chunk_pairing.h: pairs each allocation with the free that
// releases it when both are in one chunk, so the analysis never puts such a
// block in its live set.
//
// A chunk holds one thread's records in order, and the thread's allocation
// ids are its own counter (format::MakeAllocId), so the allocations of a
// chunk have ids in a short contiguous range: a block's allocation is found
// from its free by an array index, with no hashing. The pass over the chunk
// runs on the decode workers, beside the analysing thread; on that thread an
// insert and a lookup in the live set (a page per block, most of them cache
// misses) were the dearest part of a short-lived block (python's trace: 16 M
// events, most of them blocks freed within a few hundred events).
//
// A pair is only made where the result cannot differ from the live set's:
//  - the trace's frees are exact (compact frees name no block);
//  - its id appears once as an allocation in the chunk (a corrupt trace that
//    repeats an id keeps the live set's duplicate counting);
//  - no barrier lies between the two: a free error (the analysis looks its
//    block up in the live set), inherited blocks (put in it), an exec or
//    the end. Other records (stack nodes, modules, markers, leak scans, RSS
//    samples) read nothing of the live set: the analysis takes its
//    snapshots from per-site counts, and a leak scan's classes only apply
//    to blocks still live at the end.
// Every trace writer keeps one kFree per block (the preload's table removes
// a block once; a second free is a kFreeError), so no other thread can
// release a paired block in between.
//
// How a pair is marked: kPairedBlock and kPairedOldBlock (chunk_events.h).
// The analysis may always ignore the marks and use the live set as before
// (AnalyzeOptions::pair_in_chunk): a paired kFree keeps its id, and a
// paired realloc's old id is its allocation event's.
#ifndef HEAPSIGHT_ANALYZER_MODEL_CHUNK_PAIRING_H_
#define HEAPSIGHT_ANALYZER_MODEL_CHUNK_PAIRING_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "analyzer/model/chunk_events.h"

namespace heapsight::analyzer {

// Marks the allocations, frees and reallocs of `events[0, count)` that pair
// as above (chunk_events.h's kPairedBlock, kPairedOldBlock).
// `scratch` is reused between calls (about 4 bytes per allocation id in the
// chunk's range). Returns the number of pairs made.
size_t PairInChunk(Event* events, size_t count, std::vector<uint32_t>* scratch);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_CHUNK_PAIRING_H_
