// tests/analyzer/model/chunk_events_test.cc: DecodeChunk (the decode
// workers' batch fast path, writing Events through a pointer) yields exactly
// the Events of the record-by-record decoder (format::ChunkDecoder::Next and
// ToEvent), for valid chunks of every kind of record and for chunks with
// corrupt bytes at many positions (the same events up to the fault, then the
// same error).
#include "analyzer/model/chunk_events.h"

#include "analyzer/model/chunk_pairing.h"

#include <unistd.h>

#include <array>
#include <string>
#include <vector>

#include "format/chunk_decoder.h"
#include "format/trace_format.h"
#include "format/trace_reader.h"
#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer {
namespace {

using format::Api;
using format::RecordTag;

// One thread's records of every kind the writer has, with sizes, stacks
// and address deltas of every varint length and frees in all three id_ref
// forms (distance, difference, another thread's id in full).
std::vector<std::vector<uint8_t>> Chunks(const std::string& name) {
  testing::TestTraceWriter w(1, 0, 2048);
  w.Process(1, 0, "/bin/x", {"x"});
  std::vector<uint64_t> live1, live2;
  uint64_t time = 10;
  for (uint64_t i = 0; i < 6000; ++i) {
    time += (i % 13 == 0) ? (uint64_t{1} << (i % 40)) : i % 3;
    const uint64_t size = (i % 11 == 0) ? (uint64_t{1} << (i % 45)) : i % 300;
    const uint64_t stack = (i % 7 == 0) ? (uint64_t{1} << (i % 35)) : 1 + i % 50;
    if (i % 5 == 0) w.StackNode(1, 1000 + i, 1 + i % 3, 0x400000 + i * 16);
    live1.push_back(w.Alloc(1, time, Api::kMalloc, size, stack, 0x10000 + (i % 17) * (i << 12)));
    if (i % 3 == 0) live2.push_back(w.Alloc(2, time, Api::kNew, size, stack));
    if (i % 4 == 1 && !live1.empty()) {  // the newest: a distance
      w.Free(1, time, live1.back());
      live1.pop_back();
    }
    if (i % 9 == 2 && live1.size() > 3) {  // an older one: a difference
      w.Free(1, time, live1[live1.size() / 2], Api::kDelete);
      live1.erase(live1.begin() + static_cast<ptrdiff_t>(live1.size() / 2));
    }
    if (i % 10 == 3 && !live2.empty()) {  // another thread's: in full
      w.Free(1, time, live2.back());
      live2.pop_back();
    }
    if (i % 8 == 5 && !live1.empty()) {
      live1.back() = w.Realloc(1, time, live1.back(), size + 1, stack);
    }
    if (i % 500 == 7) w.Marker(1, time, "m" + std::to_string(i));
    if (i % 300 == 11) w.Rss(1, time, 1 << 20);
    if (i % 700 == 13) w.AllocFailed(1, time, uint64_t{1} << 50);
  }
  w.End(1, time + 1);
  std::string path = ::testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".hst";
  EXPECT_TRUE(w.WriteFile(path));
  auto reader = format::TraceReader::Open(path);
  EXPECT_TRUE(reader.ok());
  std::vector<std::vector<uint8_t>> chunks;
  std::vector<uint8_t> chunk;
  while ((*reader)->NextChunk(&chunk)) chunks.push_back(chunk);
  unlink(path.c_str());
  return chunks;
}

// The record-by-record path: Next and ToEvent (exact frees), then
// PairInChunk.
DecodedChunk Reference(const std::vector<uint8_t>& bytes, uint32_t stream) {
  DecodedChunk out;
  format::ChunkDecoder d(bytes.data(), bytes.size());
  if (!d.ok()) {
    out.error = d.error();
    return out;
  }
  format::Record r;
  while (d.Next(&r)) {
    Event& e = out.events.Append();
    ToEvent(r, stream, &e);
    if (NeedsFullRecord(r.tag)) {
      out.full.push_back(CopyRecord(r));
      e.full = &out.full.back()->record;
    }
  }
  out.error = d.error();
  // The same pairing pass as DecodeChunk's (chunk_pairing_test checks it).
  PairInChunk(out.events.data(), out.events.size(), &out.pairing);
  return out;
}

// The Event fields each kind of record uses (chunk_events.h); the others
// may hold anything.
enum Field { kApi = 1, kId = 2, kOldId = 4, kSize = 8, kStack = 16, kValue = 32, kCode = 64 };
int FieldsOf(RecordTag tag) {
  switch (tag) {
    case RecordTag::kAlloc:
    case RecordTag::kInherited:
      return kApi | kSize | kStack | kId | kCode;
    case RecordTag::kFree:
      return kApi | kId | kCode;
    case RecordTag::kRealloc:
      return kApi | kOldId | kValue | kSize | kStack | kId | kCode;
    case RecordTag::kStackNode:
      return kValue | kOldId | kSize;
    case RecordTag::kAllocFailed:
      return kApi | kSize | kStack;
    case RecordTag::kModule:
    case RecordTag::kModuleUnload:
    case RecordTag::kRss:
    case RecordTag::kLost:
    case RecordTag::kFork:
    case RecordTag::kThreadStart:
      return kValue;
    case RecordTag::kFreeError:
    case RecordTag::kEnd:
      return kCode;
    default:
      return 0;
  }
}

void ExpectSame(const DecodedChunk& got, const DecodedChunk& want, const std::string& what) {
  ASSERT_EQ(got.events.size(), want.events.size()) << what;
  EXPECT_EQ(got.error, want.error) << what;
  for (size_t i = 0; i < want.events.size(); ++i) {
    const Event& a = got.events[i];
    const Event& b = want.events[i];
    ASSERT_EQ(static_cast<int>(a.tag), static_cast<int>(b.tag)) << what << " event " << i;
    const int fields = FieldsOf(b.tag);
    EXPECT_EQ(a.stream, b.stream) << what << " event " << i;
    EXPECT_EQ(a.paired, b.paired) << what << " event " << i;
    EXPECT_EQ(a.time_us, b.time_us) << what << " event " << i;
    if (fields & kApi) {
      EXPECT_EQ(static_cast<int>(a.api), static_cast<int>(b.api)) << what << i;
    }
    if (fields & kCode) {
      EXPECT_EQ(a.code, b.code) << what << " event " << i;
    }
    if (fields & kId) {
      EXPECT_EQ(a.id, b.id) << what << " event " << i;
    }
    if (fields & kOldId) {
      EXPECT_EQ(a.old_id, b.old_id) << what << " event " << i;
    }
    if (fields & kSize) {
      EXPECT_EQ(a.size, b.size) << what << " event " << i;
    }
    if (fields & kStack) {
      EXPECT_EQ(a.stack, b.stack) << what << " event " << i;
    }
    if (fields & kValue) {
      EXPECT_EQ(a.value, b.value) << what << " event " << i;
    }
    if (b.tag == RecordTag::kFree && (b.paired & kPairedBlock) != 0) {
      // A paired free carries its block (chunk_events.h).
      EXPECT_EQ(a.size, b.size) << what << " event " << i;
      EXPECT_EQ(a.stack, b.stack) << what << " event " << i;
      EXPECT_EQ(a.value, b.value) << what << " event " << i;
    }
    ASSERT_EQ(a.full != nullptr, b.full != nullptr) << what << " event " << i;
    if (a.full != nullptr) {
      EXPECT_EQ(a.full->marker_name, b.full->marker_name) << what << " event " << i;
    }
  }
}

// What DecodeChunk counts for the analysis, recomputed from its events:
// the blocks of the releases (IsRelease) in order, then the padding, and
// the allocations' sizes by bucket. Returns the releases.
size_t ExpectChunkCounts(const DecodedChunk& got, const std::string& what) {
  std::vector<uint64_t> released;
  std::array<uint64_t, kEventSizeBuckets> sizes{};
  for (const Event& e : got.events) {
    if (IsRelease(e)) released.push_back(e.tag == RecordTag::kFree ? e.id : e.old_id);
    if (e.tag == RecordTag::kAlloc || e.tag == RecordTag::kRealloc) {
      ++sizes[EventSizeBucket(e.size)];
    }
  }
  const size_t releases = released.size();
  released.insert(released.end(), DecodedChunk::kReleasedPad, 0);
  EXPECT_EQ(got.released, released) << what;
  EXPECT_EQ(got.allocation_sizes, sizes) << what;
  return releases;
}

TEST(ChunkEventsTest, SizeBucketsArePowersOfTwo) {
  EXPECT_EQ(EventSizeBucket(0), 0);
  EXPECT_EQ(EventSizeBucket(1), 1);
  EXPECT_EQ(EventSizeBucket(2), 2);
  EXPECT_EQ(EventSizeBucket(3), 2);
  EXPECT_EQ(EventSizeBucket(4), 3);
  EXPECT_EQ(EventSizeBucket(4095), 12);
  EXPECT_EQ(EventSizeBucket(4096), 13);
  EXPECT_EQ(EventSizeBucket(~uint64_t{0}), 64);
}

TEST(ChunkEventsTest, DecodeChunkEqualsTheRecordByRecordDecoder) {
  const auto chunks = Chunks("events");
  ASSERT_GT(chunks.size(), 20u);
  size_t events = 0, frees = 0, reallocs = 0, full = 0, releases = 0, allocations = 0;
  DecodedChunk got;  // reused, as a decode worker does
  for (size_t c = 0; c < chunks.size(); ++c) {
    DecodeChunk(chunks[c].data(), chunks[c].size(), &got, false, 7);
    ExpectSame(got, Reference(chunks[c], 7), "chunk " + std::to_string(c));
    releases += ExpectChunkCounts(got, "chunk " + std::to_string(c));
    for (uint64_t n : got.allocation_sizes) allocations += n;
    EXPECT_TRUE(got.ordered);
    EXPECT_EQ(got.error, "");
    events += got.events.size();
    for (const Event& e : got.events) {
      frees += e.tag == RecordTag::kFree;
      reallocs += e.tag == RecordTag::kRealloc;
      full += e.full != nullptr;
    }
  }
  // process, 6000 + 2000 allocations, 1200 stack nodes, frees and reallocs
  // of the loop, 12 markers, 20 rss, 9 failed allocations, end.
  EXPECT_EQ(reallocs, 750u);
  EXPECT_EQ(allocations, 8000u + 750u);
  EXPECT_GT(releases, 1000u);  // most frees are of blocks of other chunks
  EXPECT_EQ(full, 1u + 12u + 1u);
  EXPECT_EQ(events, 1u + 8000u + 1200u + frees + reallocs + 12u + 20u + 9u + 1u);
}

// DecodeChunk pairs blocks as it decodes (ChunkPairer): the same pairs and
// marks as PairInChunk over the record-by-record events, with the barriers
// (free errors, inherited blocks, an exec) between allocations and frees,
// frees of blocks from earlier chunks, reallocs of blocks of this chunk and
// of earlier ones, and one DecodedChunk (and its pairing scratch) reused
// for every chunk.
TEST(ChunkEventsTest, PairingWhileDecodingEqualsPairInChunkAcrossBarriers) {
  testing::TestTraceWriter w(1, 0, 4096);
  w.Process(1, 0, "/bin/x", {"x"});
  std::vector<uint64_t> live;
  uint64_t time = 1;
  for (uint64_t i = 0; i < 20000; ++i) {
    ++time;
    live.push_back(w.Alloc(1, time, i % 4 == 0 ? Api::kNew : Api::kMalloc, 8 + i % 97, 1 + i % 13));
    if (i % 3 == 0) {  // a temporary: pairs unless a barrier came between
      w.Free(1, time, live.back(), Api::kFree);
      live.pop_back();
    }
    if (i % 7 == 2 && live.size() > 40) {  // an older block, often of an earlier chunk
      const size_t at = live.size() - 1 - (i * 31) % 40;
      w.Free(1, time, live[at]);
      live.erase(live.begin() + static_cast<ptrdiff_t>(at));
    }
    if (i % 5 == 1 && !live.empty()) {
      const size_t at = live.size() - 1 - (i % 3) * (live.size() > 100 ? 30 : 0);
      live[at] = w.Realloc(1, time, live[at], 64 + i % 5, 2 + i % 3);
    }
    if (i % 211 == 5) w.FreeError(1, time, Api::kFree, format::FreeError::kDoubleFree, 0x1000, 3, live.front());
    if (i % 389 == 17) w.Inherited(1, time, format::MakeAllocId(1, 1000000 + i), Api::kMalloc, 24, 5);
    if (i % 97 == 3) w.Rss(1, time, 1 << 20);  // not a barrier
  }
  w.Exec(1, time + 1, "/bin/y");
  w.End(1, time + 2);
  std::string path = ::testing::TempDir() + "/pairing." + std::to_string(getpid()) + ".hst";
  ASSERT_TRUE(w.WriteFile(path));
  auto reader = format::TraceReader::Open(path);
  ASSERT_TRUE(reader.ok());
  std::vector<uint8_t> chunk;
  DecodedChunk got;
  size_t chunks = 0, paired_frees = 0, paired_reallocs = 0, unpaired_frees = 0;
  while ((*reader)->NextChunk(&chunk)) {
    DecodeChunk(chunk.data(), chunk.size(), &got, false, 2);
    ExpectSame(got, Reference(chunk, 2), "chunk " + std::to_string(chunks));
    ExpectChunkCounts(got, "chunk " + std::to_string(chunks));
    for (const Event& e : got.events) {
      if (e.tag == RecordTag::kFree) (e.paired != 0 ? paired_frees : unpaired_frees) += 1;
      paired_reallocs += e.tag == RecordTag::kRealloc && (e.paired & kPairedOldBlock) != 0;
    }
    ++chunks;
  }
  unlink(path.c_str());
  EXPECT_GT(chunks, 3u);
  // Every kind happened: pairs, frees left to the live set, realloc pairs.
  EXPECT_GT(paired_frees, 1000u);
  EXPECT_GT(unpaired_frees, 100u);
  EXPECT_GT(paired_reallocs, 100u);
}

TEST(ChunkEventsTest, CorruptBytesGiveTheSameEventsAndError) {
  const auto chunks = Chunks("events_bad");
  DecodedChunk got;
  size_t errors = 0;
  for (size_t c = 0; c < chunks.size(); c += 3) {
    for (size_t at = format::kChunkPreambleBytes; at < chunks[c].size(); at += 37) {
      for (uint8_t value : {uint8_t{0x00}, uint8_t{0x80}, uint8_t{0xff}, uint8_t{0x41}}) {
        std::vector<uint8_t> bad = chunks[c];
        bad[at] = value;
        DecodeChunk(bad.data(), bad.size(), &got, false, 3);
        ExpectSame(got, Reference(bad, 3),
                   "chunk " + std::to_string(c) + " byte " + std::to_string(at));
        ExpectChunkCounts(got, "chunk " + std::to_string(c) + " byte " + std::to_string(at));
        errors += !got.error.empty();
      }
    }
  }
  EXPECT_GT(errors, 100u);  // many of the corruptions are caught
}

}  // namespace
}  // namespace heapsight::analyzer
