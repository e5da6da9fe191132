// tests/format/round_trip_test.cc: every record through ChunkEncoder and
// back through ChunkDecoder; file-level checks of TraceReader (version,
// truncation, garbage).
#include <gtest/gtest.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "format/chunk_decoder.h"
#include "format/chunk_encoder.h"
#include "format/trace_reader.h"
#include "tests/support/run_traced.h"

namespace heapsight::format {
namespace {

constexpr uint32_t kThread = 3;

std::vector<Record> DecodeAll(const uint8_t* data, size_t size, std::string* error,
                              bool compact = false, bool address = false) {
  std::vector<Record> out;
  ChunkDecoder decoder(data, size, compact, address);
  Record r;
  while (decoder.Next(&r)) out.push_back(r);
  *error = decoder.error();
  return out;
}

TEST(RoundTrip, EveryRecord) {
  std::vector<uint8_t> buf(1 << 16);
  ChunkEncoder enc;
  ChunkHeader h{kThread, 1234, 7, 1000, 50};
  enc.Begin(buf.data(), buf.size(), h);
  const char* argv[] = {"prog", "--flag", "x"};
  SegmentInfo segs[] = {{0, 0x1000, 0, 5}, {0x2000, 0x500, 0x2000, 6}};
  uint8_t build_id[] = {0xde, 0xad, 0xbe, 0xef};
  ASSERT_TRUE(enc.PutProcess(1000, "/bin/prog", 9, argv, 3, 12, 42, "/t/parent.hst", 13));
  ASSERT_TRUE(enc.PutThreadStart(1000, 1234, 1));
  ASSERT_TRUE(enc.PutModule(1001, 1, 0x7f0000, "/lib/x.so", 9, build_id, 4, segs, 2));
  ASSERT_TRUE(enc.PutStackNode(1, 0, 0x401000));
  ASSERT_TRUE(enc.PutStackNode(2, 1, 0x401100));
  ASSERT_TRUE(enc.PutAlloc(1002, Api::kMalloc, 100, 2, 0, 0x5000));     // counter 50
  ASSERT_TRUE(enc.PutAlloc(1003, Api::kNewAligned, 64, 1, 64, 0x4000));  // counter 51
  ASSERT_TRUE(enc.PutFree(1004, Api::kFree, MakeAllocId(kThread, 50), kThread, 52));
  ASSERT_TRUE(enc.PutFree(1005, Api::kDelete, MakeAllocId(9, 77), kThread, 52));
  ASSERT_TRUE(enc.PutRealloc(1006, 1008, Api::kRealloc, MakeAllocId(kThread, 51), kThread, 52,
                             200, 2, 0x6000));  // counter 52
  ASSERT_TRUE(enc.PutAllocFailed(1009, Api::kNew, 1ull << 60, 2, 0));
  ASSERT_TRUE(enc.PutFreeError(1010, Api::kFree, FreeError::kDoubleFree, FreeAction::kSkipped,
                               0xbad, 1, 0));
  ASSERT_TRUE(enc.PutModuleUnload(1011, 1));
  ASSERT_TRUE(enc.PutRss(1012, 1 << 20));
  ASSERT_TRUE(enc.PutFork(1013, 4321));
  ASSERT_TRUE(enc.PutExec(1014, "/bin/next", 9));
  ASSERT_TRUE(enc.PutExecFailed(1015));
  ASSERT_TRUE(enc.PutInherited(1016, MakeAllocId(1, 5), Api::kCalloc, 30, 2));
  ASSERT_TRUE(enc.PutMarker(1017, "phase", 5));
  ASSERT_TRUE(enc.PutLost(1018, 9));
  ASSERT_TRUE(enc.PutEnd(1019, EndReason::kUnderscoreExit, -3));
  enc.Seal();

  std::string error;
  std::vector<Record> r = DecodeAll(buf.data(), enc.size(), &error);
  ASSERT_EQ(error, "");
  ASSERT_EQ(r.size(), enc.records());
  size_t i = 0;
  EXPECT_EQ(r[i].tag, RecordTag::kProcess);
  EXPECT_EQ(r[i].process.executable, "/bin/prog");
  ASSERT_EQ(r[i].process.argv.size(), 3u);
  EXPECT_EQ(r[i].process.argv[1], "--flag");
  EXPECT_EQ(r[i].process.parent_pid, 42u);
  EXPECT_EQ(r[i].process.parent_trace, "/t/parent.hst");
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kThreadStart);
  EXPECT_EQ(r[i].thread_start.tid, 1234u);
  EXPECT_EQ(r[i].thread_start.creator_index, 1u);
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kModule);
  EXPECT_EQ(r[i].time_us, 1001u);
  EXPECT_EQ(r[i].module.id, 1u);
  EXPECT_EQ(r[i].module.load_address, 0x7f0000u);
  EXPECT_EQ(r[i].module.path, "/lib/x.so");
  EXPECT_EQ(r[i].module.build_id, std::string("\xde\xad\xbe\xef"));
  ASSERT_EQ(r[i].module.segments.size(), 2u);
  EXPECT_EQ(r[i].module.segments[1].vaddr, 0x2000u);
  EXPECT_EQ(r[i].module.segments[1].memsz, 0x500u);
  EXPECT_EQ(r[i].module.segments[1].file_offset, 0x2000u);
  EXPECT_EQ(r[i].module.segments[1].flags, 6);
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kStackNode);
  EXPECT_EQ(r[i].stack_node.node, 1u);
  EXPECT_EQ(r[i].stack_node.parent, 0u);
  EXPECT_EQ(r[i].stack_node.ip, 0x401000u);
  ++i;
  EXPECT_EQ(r[i].stack_node.node, 2u);
  EXPECT_EQ(r[i].stack_node.parent, 1u);
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kAlloc);
  EXPECT_EQ(r[i].time_us, 1002u);
  EXPECT_EQ(r[i].api, Api::kMalloc);
  EXPECT_EQ(r[i].size, 100u);
  EXPECT_EQ(r[i].stack, 2u);
  EXPECT_EQ(r[i].address, 0x5000u);
  EXPECT_EQ(r[i].id, MakeAllocId(kThread, 50));
  ++i;
  EXPECT_EQ(r[i].api, Api::kNewAligned);
  EXPECT_EQ(r[i].alignment, 64u);
  EXPECT_EQ(r[i].address, 0x4000u);  // negative delta
  EXPECT_EQ(r[i].id, MakeAllocId(kThread, 51));
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kFree);
  EXPECT_EQ(r[i].id, MakeAllocId(kThread, 50));  // own thread, short form
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kFree);
  EXPECT_EQ(r[i].api, Api::kDelete);
  EXPECT_EQ(r[i].id, MakeAllocId(9, 77));  // other thread, long form
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kRealloc);
  EXPECT_EQ(r[i].old_id, MakeAllocId(kThread, 51));
  EXPECT_EQ(r[i].id, MakeAllocId(kThread, 52));
  EXPECT_EQ(r[i].time_us, 1006u);
  EXPECT_EQ(r[i].time2_us, 1008u);
  EXPECT_EQ(r[i].size, 200u);
  EXPECT_EQ(r[i].address, 0x6000u);
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kAllocFailed);
  EXPECT_EQ(r[i].size, 1ull << 60);
  EXPECT_EQ(r[i].api, Api::kNew);
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kFreeError);
  EXPECT_EQ(r[i].address, 0xbadu);
  EXPECT_EQ(r[i].free_error.error, FreeError::kDoubleFree);
  EXPECT_EQ(r[i].free_error.action, FreeAction::kSkipped);
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kModuleUnload);
  EXPECT_EQ(r[i].module.id, 1u);
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kRss);
  EXPECT_EQ(r[i].rss_bytes, 1u << 20);
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kFork);
  EXPECT_EQ(r[i].child_pid, 4321u);
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kExec);
  EXPECT_EQ(r[i].exec_path, "/bin/next");
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kExecFailed);
  EXPECT_EQ(r[i].time_us, 1015u);
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kInherited);
  EXPECT_EQ(r[i].id, MakeAllocId(1, 5));
  EXPECT_EQ(r[i].api, Api::kCalloc);
  EXPECT_EQ(r[i].size, 30u);
  EXPECT_EQ(r[i].stack, 2u);
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kMarker);
  EXPECT_EQ(r[i].marker_name, "phase");
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kLost);
  EXPECT_EQ(r[i].lost_events, 9u);
  ++i;
  EXPECT_EQ(r[i].tag, RecordTag::kEnd);
  EXPECT_EQ(r[i].end.reason, EndReason::kUnderscoreExit);
  EXPECT_EQ(r[i].end.exit_status, -3);
  EXPECT_EQ(r[i].time_us, 1019u);
}

// Issue 5's records: kLeakScan, kBlockClasses, kFreeError.
TEST(RoundTrip, LeakScanRecords) {
  std::vector<uint8_t> buf(1 << 16);
  ChunkEncoder enc;
  enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 500, 0});
  uint64_t blocks[kLeakClassCount] = {3, 1, 0, 7};
  uint64_t bytes[kLeakClassCount] = {1224, 48, 0, 1ull << 40};
  ASSERT_TRUE(enc.PutFreeError(510, Api::kDeleteSized, FreeError::kMismatchedFree,
                               FreeAction::kPassed, 0x5000, 9, MakeAllocId(2, 77)));
  ASSERT_TRUE(enc.PutLeakScan(600, 2, ScanReason::kExit, 1234, 4, 1, 65536, 11, blocks, bytes));
  // Ids in any order, including decreasing ones and other threads'.
  uint64_t ids[] = {MakeAllocId(1, 5), MakeAllocId(1, 3), MakeAllocId(7, 0), 1, UINT64_MAX >> 1};
  ASSERT_TRUE(enc.PutBlockClasses(2, LeakClass::kIndirect, ids, 5));
  ASSERT_TRUE(enc.PutBlockClasses(2, LeakClass::kReachable, ids, 0));
  ASSERT_TRUE(enc.PutEnd(700, EndReason::kExit, 0));
  enc.Seal();
  std::string error;
  std::vector<Record> r = DecodeAll(enc.data(), enc.size(), &error);
  ASSERT_EQ(error, "");
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0].tag, RecordTag::kFreeError);
  EXPECT_EQ(r[0].time_us, 510u);
  EXPECT_EQ(r[0].api, Api::kDeleteSized);
  EXPECT_EQ(r[0].free_error.error, FreeError::kMismatchedFree);
  EXPECT_EQ(r[0].free_error.action, FreeAction::kPassed);
  EXPECT_EQ(r[0].address, 0x5000u);
  EXPECT_EQ(r[0].stack, 9u);
  EXPECT_EQ(r[0].id, MakeAllocId(2, 77));
  EXPECT_EQ(r[1].tag, RecordTag::kLeakScan);
  EXPECT_EQ(r[1].time_us, 600u);
  EXPECT_EQ(r[1].leak_scan.scan, 2u);
  EXPECT_EQ(r[1].leak_scan.reason, ScanReason::kExit);
  EXPECT_EQ(r[1].leak_scan.duration_us, 1234u);
  EXPECT_EQ(r[1].leak_scan.threads_stopped, 4u);
  EXPECT_EQ(r[1].leak_scan.threads_missed, 1u);
  EXPECT_EQ(r[1].leak_scan.root_bytes, 65536u);
  EXPECT_EQ(r[1].leak_scan.blocks, 11u);
  for (int i = 0; i < kLeakClassCount; ++i) {
    EXPECT_EQ(r[1].leak_scan.class_blocks[i], blocks[i]);
    EXPECT_EQ(r[1].leak_scan.class_bytes[i], bytes[i]);
  }
  EXPECT_EQ(r[2].tag, RecordTag::kBlockClasses);
  EXPECT_EQ(r[2].block_classes.scan, 2u);
  EXPECT_EQ(r[2].block_classes.leak_class, LeakClass::kIndirect);
  EXPECT_EQ(r[2].block_classes.ids, std::vector<uint64_t>(ids, ids + 5));
  EXPECT_TRUE(r[3].block_classes.ids.empty());
  EXPECT_EQ(r[4].tag, RecordTag::kEnd);
  EXPECT_EQ(r[4].time_us, 700u);
}

TEST(RoundTrip, BlockClassesRejectsBadClassAndCount) {
  std::vector<uint8_t> buf(4096);
  ChunkEncoder enc;
  enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 0, 0});
  uint64_t id = 5;
  ASSERT_TRUE(enc.PutBlockClasses(1, LeakClass::kDefinite, &id, 1));
  size_t size = enc.size();
  // A batch too big for the room left is refused without writing.
  std::vector<uint64_t> many(1000, 1);
  EXPECT_FALSE(enc.PutBlockClasses(1, LeakClass::kDefinite, many.data(), many.size()));
  EXPECT_EQ(enc.size(), size);
  EXPECT_EQ(enc.Seal(), size);
  // The record: tag at the start of the record stream, a 4-byte body length,
  // then scan, class, count.
  constexpr size_t kTag = kChunkPreambleBytes;
  constexpr size_t kClass = kTag + 1 + kBodyLengthBytes + 1;
  std::string error;
  // Class byte 9 is not a LeakClass.
  std::vector<uint8_t> bad(enc.data(), enc.data() + size);
  ASSERT_EQ(bad[kTag], static_cast<uint8_t>(RecordTag::kBlockClasses));
  ASSERT_EQ(bad[kClass], static_cast<uint8_t>(LeakClass::kDefinite));
  bad[kClass] = 9;
  DecodeAll(bad.data(), bad.size(), &error);
  EXPECT_NE(error.find("block classes"), std::string::npos) << error;
  // A count larger than the bytes left.
  bad.assign(enc.data(), enc.data() + size);
  bad[kClass + 1] = 100;
  DecodeAll(bad.data(), bad.size(), &error);
  EXPECT_NE(error.find("block classes"), std::string::npos) << error;
  // A body length longer than the record stream.
  bad.assign(enc.data(), enc.data() + size);
  bad[kTag + 1] = 0xff;
  DecodeAll(bad.data(), bad.size(), &error);
  EXPECT_NE(error.find("length of a record"), std::string::npos) << error;
  // Stream lengths that do not add up to the chunk.
  bad.assign(enc.data(), enc.data() + size);
  bad[sizeof(ChunkHeader)] += 1;
  DecodeAll(bad.data(), bad.size(), &error);
  EXPECT_NE(error.find("stream lengths add up"), std::string::npos) << error;
}

// Version 3's kStackNode deltas: node numbers out of order, a parent far
// back, addresses that go down and wrap, and across a chunk boundary (the
// deltas restart from 0); a parent that is not older than its node is
// corruption.
TEST(RoundTrip, StackNodeDeltas) {
  struct Node {
    uint64_t node, parent, ip;
  };
  const Node nodes[] = {{7, 0, 0x7fff00001000},  {8, 7, 0x401000}, {9, 8, 0x401010},
                        {3, 1, 0xffffffffffffff00}, {900000, 2, 0x10}, {900001, 900000, 0x7fff00000ff0}};
  std::vector<uint8_t> buf(4096);
  for (int start : {0, 3}) {  // all from the start of a chunk, or the last three alone
    ChunkEncoder enc;
    enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 0, 0});
    for (int i = start; i < 6; ++i) {
      ASSERT_TRUE(enc.PutStackNode(nodes[i].node, nodes[i].parent, nodes[i].ip));
    }
    size_t size = enc.Seal();
    std::string error;
    std::vector<Record> r = DecodeAll(enc.data(), size, &error);
    ASSERT_EQ(error, "");
    ASSERT_EQ(r.size(), static_cast<size_t>(6 - start));
    for (int i = start; i < 6; ++i) {
      const Record& got = r[static_cast<size_t>(i - start)];
      EXPECT_EQ(got.tag, RecordTag::kStackNode);
      EXPECT_EQ(got.stack_node.node, nodes[i].node);
      EXPECT_EQ(got.stack_node.parent, nodes[i].parent);
      EXPECT_EQ(got.stack_node.ip, nodes[i].ip);
    }
  }
  // The body: sv node delta, uv parent delta, sv ip delta. Node 2 with
  // parent delta 3 would name parent -1; parent delta 0 would be its own
  // parent.
  for (uint8_t parent_delta : {3, 0}) {
    ChunkEncoder enc;
    enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 0, 0});
    ASSERT_TRUE(enc.PutStackNode(2, 1, 0x1000));
    size_t size = enc.Seal();
    std::vector<uint8_t> bad(enc.data(), enc.data() + size);
    constexpr size_t kBody = kChunkPreambleBytes + 1 + kBodyLengthBytes;
    ASSERT_EQ(bad[kBody], 4);      // zigzag(2)
    ASSERT_EQ(bad[kBody + 1], 1);  // 2 - 1
    bad[kBody + 1] = parent_delta;
    std::string error;
    DecodeAll(bad.data(), bad.size(), &error);
    EXPECT_NE(error.find("stack node"), std::string::npos) << error;
  }
}

// id_ref's forms (version 3 and later): frees in allocation order, in reverse, in
// random order and of other threads' blocks all come back as the ids they
// named, through the decoder's fast path (records far from the chunk's end)
// and its careful path (the last ones).
TEST(RoundTrip, FreesInAnyOrderNameTheirBlocks) {
  std::mt19937_64 rng(42);
  for (int order = 0; order < 3; ++order) {
    std::vector<uint8_t> buf(1 << 16);
    ChunkEncoder enc;
    constexpr uint64_t kFirst = 1000;
    enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 0, kFirst});
    constexpr int kBlocks = 600;
    for (int i = 0; i < kBlocks; ++i) ASSERT_TRUE(enc.PutAlloc(1, Api::kMalloc, 16, 1, 0, 0));
    std::vector<uint64_t> counters;
    for (int i = 0; i < kBlocks; ++i) counters.push_back(kFirst + static_cast<uint64_t>(i));
    if (order == 1) std::reverse(counters.begin(), counters.end());
    if (order == 2) std::shuffle(counters.begin(), counters.end(), rng);
    std::vector<uint64_t> freed;
    for (size_t i = 0; i < counters.size(); ++i) {
      uint64_t id = MakeAllocId(kThread, counters[i]);
      if (i % 7 == 3) id = MakeAllocId(kThread + 1, counters[i] * 3);  // another thread's
      freed.push_back(id);
      ASSERT_TRUE(enc.PutFree(2, Api::kFree, id, kThread, kFirst + kBlocks));
    }
    size_t size = enc.Seal();
    std::string error;
    std::vector<Record> r = DecodeAll(enc.data(), size, &error);
    ASSERT_EQ(error, "") << "order " << order;
    ASSERT_EQ(r.size(), static_cast<size_t>(2 * kBlocks));
    for (int i = 0; i < kBlocks; ++i) {
      ASSERT_EQ(r[static_cast<size_t>(kBlocks + i)].tag, RecordTag::kFree);
      EXPECT_EQ(r[static_cast<size_t>(kBlocks + i)].id, freed[static_cast<size_t>(i)])
          << "order " << order << ", free " << i;
    }
  }
}

// A delta-form id_ref naming a counter not allocated yet, or below 0, is
// corruption.
TEST(RoundTrip, DeltaFormOutsideTheAllocatedCountersIsRejected) {
  std::vector<uint8_t> buf(4096);
  for (int64_t delta : {int64_t{5}, int64_t{-11}}) {
    ChunkEncoder enc;
    enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 0, 10});
    ASSERT_TRUE(enc.PutAlloc(1, Api::kMalloc, 16, 1, 0, 0));  // counter 10
    ASSERT_TRUE(enc.PutFree(2, Api::kFree, MakeAllocId(kThread, 10), kThread, 11));
    size_t size = enc.Seal();
    std::vector<uint8_t> bad(enc.data(), enc.data() + size);
    // The free's ref is the last byte of the record stream (version 4:
    // hot byte, stack; hot byte, id_ref).
    uint32_t lengths[1 + kColumnCount];
    std::memcpy(lengths, bad.data() + sizeof(ChunkHeader), sizeof lengths);
    ASSERT_EQ(lengths[0], 4u);
    ASSERT_EQ(bad[kChunkPreambleBytes + 2], HotRecordByte(2, static_cast<uint8_t>(Api::kFree)));
    size_t at = kChunkPreambleBytes + 3;
    // Counter 10 was freed as delta 0 from first_alloc_counter 10 (a tie,
    // so the distance form: 1 << 1). Rewrite it as a delta form that lands
    // on counter 15 (not allocated) or -1 (wraps).
    ASSERT_EQ(bad[at], 2);
    bad[at] = static_cast<uint8_t>((ZigZag(delta) << 2) | 3);
    std::string error;
    DecodeAll(bad.data(), bad.size(), &error);
    EXPECT_NE(error, "") << "delta " << delta;
  }
}

// The columns must hold exactly the fields the record stream's hot records
// take: one too many or one too few is corruption, never a misread.
TEST(RoundTrip, ColumnsMustMatchTheirRecords) {
  std::vector<uint8_t> buf(4096);
  ChunkEncoder enc;
  enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 0, 0});
  ASSERT_TRUE(enc.PutAlloc(5, Api::kMalloc, 100, 1, 0, 0));
  size_t size = enc.Seal();
  std::vector<uint8_t> good(enc.data(), enc.data() + size);
  uint32_t lengths[1 + kColumnCount];
  std::memcpy(lengths, good.data() + sizeof(ChunkHeader), sizeof lengths);
  ASSERT_EQ(lengths[1 + kTimeColumn], 1u);  // the time delta 5, one byte
  auto with_lengths = [&](std::vector<uint8_t> bytes) {
    std::memcpy(bytes.data() + sizeof(ChunkHeader), lengths, sizeof lengths);
    return bytes;
  };
  std::string error;
  ASSERT_EQ(DecodeAll(good.data(), good.size(), &error).size(), 1u);
  ASSERT_EQ(error, "");

  // A byte left over in the misc column (the last stream).
  std::vector<uint8_t> more = good;
  more.push_back(0);
  ++lengths[1 + kMiscColumn];
  DecodeAll(with_lengths(more).data(), more.size(), &error);
  EXPECT_NE(error.find("columns hold more fields"), std::string::npos) << error;
  --lengths[1 + kMiscColumn];

  // The time column empty: the alloc has no time delta to read.
  std::vector<uint8_t> fewer = good;
  size_t time_at = kChunkPreambleBytes + lengths[0];
  ASSERT_EQ(fewer[time_at], 5);
  fewer.erase(fewer.begin() + static_cast<ptrdiff_t>(time_at));
  lengths[1 + kTimeColumn] = 0;
  DecodeAll(with_lengths(fewer).data(), fewer.size(), &error);
  EXPECT_NE(error.find("malformed alloc record"), std::string::npos) << error;
}

// Version 4's record stream: a hot record is one byte of kind and api and
// its stack and id_ref, a row after another (sizes in their column); a plain tag 1-3 (version 3's hot
// records) and a hot byte whose api is out of range are corruption.
TEST(RoundTrip, HotRecordsAreRowsBehindOneByte) {
  std::vector<uint8_t> buf(4096);
  ChunkEncoder enc;
  enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 0, 0});
  ASSERT_TRUE(enc.PutAlloc(5, Api::kNewArray, 100, 7, 0, 0));
  ASSERT_TRUE(enc.PutFree(5, Api::kDeleteArray, MakeAllocId(kThread, 0), kThread, 1));
  size_t size = enc.Seal();
  std::vector<uint8_t> good(enc.data(), enc.data() + size);
  uint32_t lengths[1 + kColumnCount];
  std::memcpy(lengths, good.data() + sizeof(ChunkHeader), sizeof lengths);
  const uint8_t* rows = good.data() + kChunkPreambleBytes;
  ASSERT_EQ(lengths[0], 4u);
  EXPECT_EQ(rows[0], 64 * 1 + static_cast<int>(Api::kNewArray));
  EXPECT_EQ(rows[1], 7);    // stack
  EXPECT_EQ(rows[2], 64 * 2 + static_cast<int>(Api::kDeleteArray));
  EXPECT_EQ(rows[3], 2);    // id_ref: distance 1 << 1
  EXPECT_EQ(lengths[1 + kTimeColumn], 2u);
  EXPECT_EQ(lengths[1 + kSizeColumn], 1u);
  EXPECT_EQ(rows[lengths[0] + lengths[1]], 100);  // the size, in its column
  EXPECT_EQ(lengths[1 + kMiscColumn], 2u);
  std::string error;
  std::vector<Record> r = DecodeAll(good.data(), good.size(), &error);
  ASSERT_EQ(error, "");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].api, Api::kNewArray);
  EXPECT_EQ(r[1].api, Api::kDeleteArray);
  EXPECT_EQ(r[1].time_us, 5u);
  for (uint8_t first : {uint8_t{1}, uint8_t{2}, uint8_t{3},
                        static_cast<uint8_t>(64 + static_cast<int>(Api::kApiLimit))}) {
    std::vector<uint8_t> bad = good;
    bad[kChunkPreambleBytes] = first;
    DecodeAll(bad.data(), bad.size(), &error);
    EXPECT_NE(error.find("malformed"), std::string::npos) << int{first} << ": " << error;
  }
}

TEST(RoundTrip, FullChunkRefusesWithoutWriting) {
  std::vector<uint8_t> buf(256);
  ChunkEncoder enc;
  enc.Begin(buf.data(), buf.size(), ChunkHeader{1, 1, 0, 0, 0});
  int n = 0;
  while (enc.PutAlloc(0, Api::kMalloc, 1, 1, 0, 0)) ++n;
  size_t size = enc.size();
  EXPECT_FALSE(enc.PutAlloc(0, Api::kMalloc, 1, 1, 0, 0));
  EXPECT_EQ(enc.size(), size);
  EXPECT_EQ(enc.Seal(), size);
  std::string error;
  EXPECT_EQ(DecodeAll(buf.data(), size, &error).size(), static_cast<size_t>(n));
  EXPECT_EQ(error, "");
}

// Address frees' column shares (kAddressColumnShares): a 128 KiB chunk of
// python-like rows (random 3-4 byte address deltas in the misc column)
// holds about three times the records the table shares let in, every
// record decodes as written, and the largest record a writer caps (the
// process record: 16 KiB of command line, 256 arguments, two 4 KiB paths)
// still fits in an empty chunk.
TEST(RoundTrip, AddressSharesHoldThreeTimesTheRows) {
  constexpr size_t kChunk = 128 * 1024;
  auto fill = [](const ColumnShares& shares, std::vector<uint8_t>* buf, size_t* records) {
    ChunkEncoder enc;
    enc.Begin(buf->data(), buf->size(), ChunkHeader{kThread, 1, 0, 0, 0}, shares);
    std::mt19937_64 rng(7);
    uint64_t t = 0;
    size_t n = 0;
    for (;; ++n) {
      const uint64_t address = 0x555500000000 + (rng() % (400 << 20)) * 16;
      const bool ok = n % 2 == 0
                          ? enc.PutAllocAddress(t, Api::kMalloc, 16 + n % 200, 1 + n % 300, 0,
                                                address, n % 7 == 0 ? AddressOrder(n % 16) : 0)
                          : enc.PutFreeAddress(t, Api::kFree, address, 0);
      if (!ok) break;
      t += n % 3;
    }
    *records = n;
    return enc.Seal();
  };
  std::vector<uint8_t> table(kChunk), address(kChunk);
  size_t table_records = 0, address_records = 0;
  fill(kTableColumnShares, &table, &table_records);
  const size_t size = fill(kAddressColumnShares, &address, &address_records);
  EXPECT_GE(address_records, 3 * table_records);
  EXPECT_GE(size, kChunk / 2);
  std::string error;
  std::vector<Record> r =
      DecodeAll(address.data(), size, &error, /*compact=*/false, /*address=*/true);
  ASSERT_EQ(error, "");
  ASSERT_EQ(r.size(), address_records);
  std::mt19937_64 rng(7);
  for (size_t n = 0; n < r.size(); ++n) {
    const uint64_t expected = 0x555500000000 + (rng() % (400 << 20)) * 16;
    ASSERT_EQ(r[n].address, expected) << n;
    ASSERT_EQ(r[n].tag, n % 2 == 0 ? RecordTag::kAlloc : RecordTag::kFree) << n;
    if (n % 2 == 0) {
      ASSERT_EQ(r[n].size, 16 + n % 200) << n;
      ASSERT_EQ(r[n].stack, 1 + n % 300) << n;
    }
  }

  std::vector<uint8_t> buf(kChunk);
  ChunkEncoder enc;
  enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 0, 0}, kAddressColumnShares);
  const std::string path(4096, 'p');
  const std::string arg(16 * 1024 / 256, 'a');
  std::vector<const char*> argv(256, arg.c_str());
  EXPECT_TRUE(enc.PutProcess(1, path.data(), path.size(), argv.data(), argv.size(),
                             argv.size() * arg.size(), 1, path.data(), path.size()));
}

// Compact frees (version 5): kFree names a stack and a size, kRealloc its
// old block's stack and size, kBlockClasses appends each block's stack and
// size; kAlloc is unchanged. Through the fast path and the checked path
// (a chunk too short for the fast path's margins decodes the same).
TEST(RoundTrip, CompactFrees) {
  for (size_t pad : {size_t{0}, size_t{4000}}) {
    std::vector<uint8_t> buf(1 << 16);
    ChunkEncoder enc;
    enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 500, 10});
    ASSERT_TRUE(enc.PutAlloc(501, Api::kMalloc, 100, 7, 0, 0));  // counter 10
    ASSERT_TRUE(enc.PutFreeCompact(502, Api::kFree, 7, 100));
    ASSERT_TRUE(enc.PutAlloc(503, Api::kNew, 300, 1u << 20, 0, 0));  // counter 11
    ASSERT_TRUE(enc.PutReallocCompact(504, 507, Api::kRealloc, 1u << 20, 300, 1ull << 33, 9,
                                      0));  // counter 12
    uint64_t ids[] = {MakeAllocId(kThread, 12), MakeAllocId(2, 4)};
    uint64_t stacks[] = {9, 3};
    uint64_t sizes[] = {1ull << 33, 0};
    ASSERT_TRUE(enc.PutBlockClasses(1, LeakClass::kReachable, ids, 2, stacks, sizes));
    ASSERT_TRUE(enc.PutBlockClasses(1, LeakClass::kDefinite, ids, 1));  // without: none
    for (size_t i = 0; i < pad; ++i) ASSERT_TRUE(enc.PutFreeCompact(510, Api::kDelete, 1, 16));
    enc.Seal();
    std::string error;
    std::vector<Record> r = DecodeAll(buf.data(), enc.size(), &error, /*compact=*/true);
    ASSERT_EQ(error, "");
    ASSERT_EQ(r.size(), 6 + pad);
    EXPECT_EQ(r[0].tag, RecordTag::kAlloc);
    EXPECT_EQ(r[0].id, MakeAllocId(kThread, 10));
    EXPECT_EQ(r[1].tag, RecordTag::kFree);
    EXPECT_EQ(r[1].time_us, 502u);
    EXPECT_EQ(r[1].id, 0u);
    EXPECT_EQ(r[1].stack, 7u);
    EXPECT_EQ(r[1].size, 100u);
    EXPECT_EQ(r[1].api, Api::kFree);
    EXPECT_EQ(r[3].tag, RecordTag::kRealloc);
    EXPECT_EQ(r[3].time_us, 504u);
    EXPECT_EQ(r[3].time2_us, 507u);
    EXPECT_EQ(r[3].old_id, 0u);
    EXPECT_EQ(r[3].old_stack, 1u << 20);
    EXPECT_EQ(r[3].old_size, 300u);
    EXPECT_EQ(r[3].size, 1ull << 33);
    EXPECT_EQ(r[3].stack, 9u);
    EXPECT_EQ(r[3].id, MakeAllocId(kThread, 12));
    EXPECT_EQ(r[4].block_classes.ids, std::vector<uint64_t>(ids, ids + 2));
    EXPECT_EQ(r[4].block_classes.stacks, std::vector<uint64_t>(stacks, stacks + 2));
    EXPECT_EQ(r[4].block_classes.sizes, std::vector<uint64_t>(sizes, sizes + 2));
    EXPECT_TRUE(r[5].block_classes.stacks.empty());
    EXPECT_TRUE(r[5].block_classes.sizes.empty());
    if (pad != 0) {
      EXPECT_EQ(r.back().stack, 1u);
      EXPECT_EQ(r.back().size, 16u);
      EXPECT_EQ(r.back().api, Api::kDelete);
    }
    // An exact reader of the same bytes does not see these frees: the
    // stack is read as an id_ref (the version says which reader is right).
    std::vector<Record> exact = DecodeAll(buf.data(), enc.size(), &error, /*compact=*/false);
    EXPECT_NE(error, "");
  }
}

// A compact chunk cut inside a compact record's fields is an error, not a
// misread: a column without the free's size.
TEST(RoundTrip, CompactFreeWithoutItsSizeIsRejected) {
  std::vector<uint8_t> buf(4096);
  ChunkEncoder enc;
  enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 0, 0});
  ASSERT_TRUE(enc.PutFreeCompact(1, Api::kFree, 5, 40));
  size_t size = enc.Seal();
  // Stream lengths: rows, time, size, misc. Move the size column's byte to
  // nothing (drop the last byte, shorten the size column).
  uint32_t lengths[4];
  std::memcpy(lengths, buf.data() + sizeof(ChunkHeader), sizeof lengths);
  ASSERT_EQ(lengths[2], 1u);
  lengths[2] = 0;
  std::memcpy(buf.data() + sizeof(ChunkHeader), lengths, sizeof lengths);
  std::string error;
  DecodeAll(buf.data(), size - 1, &error, /*compact=*/true);
  EXPECT_NE(error.find("malformed free record"), std::string::npos) << error;
}

// Address frees (version 6): the rows of trace_format.h's "Address
// frees" back as written, the address deltas chained through every hot
// record (a realloc's old address, then its new one).
TEST(RoundTrip, AddressFrees) {
  for (size_t pad : {size_t{0}, size_t{1000}}) {
    std::vector<uint8_t> buf(1 << 17);
    ChunkEncoder enc;
    enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 500, 10});
    ASSERT_TRUE(enc.PutAllocAddress(501, Api::kMalloc, 100, 7, 0, 0x7f0000001000, 0));  // 10
    ASSERT_TRUE(enc.PutAllocAddress(502, Api::kNewAligned, 64, 8, 64, 0x5000, 5));      // 11
    ASSERT_TRUE(enc.PutFreeAddress(503, Api::kDelete, 0x5000, AddressOrder(6)));
    ASSERT_TRUE(enc.PutReallocAddress(504, 507, Api::kRealloc, 0x7f0000001000, 0, 1ull << 33, 9,
                                      0x7f0000001000, AddressOrder(15)));  // 12
    ASSERT_TRUE(enc.PutFreeAddress(508, Api::kFree, 0x10, kAddressOrderNone));
    uint64_t addresses[] = {0x10, 0x7f0000001000};
    ASSERT_TRUE(enc.PutBlockClasses(1, LeakClass::kReachable, addresses, 2));
    ASSERT_TRUE(enc.PutInherited(509, 0x2000, Api::kNew, 48, 0));
    ASSERT_TRUE(enc.PutFreeError(510, Api::kDelete, FreeError::kMismatchedFree,
                                 FreeAction::kPassed, 0x2000, 7, 0));
    for (size_t i = 0; i < pad; ++i) {
      ASSERT_TRUE(enc.PutAllocAddress(511, Api::kMalloc, 16, 1, 0, 0x9000 + 16 * i, 0));
      ASSERT_TRUE(enc.PutFreeAddress(512, Api::kFree, 0x9000 + 16 * i, 0));
    }
    enc.Seal();
    std::string error;
    std::vector<Record> r =
        DecodeAll(buf.data(), enc.size(), &error, /*compact=*/false, /*address=*/true);
    ASSERT_EQ(error, "");
    ASSERT_EQ(r.size(), 8 + 2 * pad);
    EXPECT_EQ(r[0].tag, RecordTag::kAlloc);
    EXPECT_EQ(r[0].id, MakeAllocId(kThread, 10));
    EXPECT_EQ(r[0].address, 0x7f0000001000u);
    EXPECT_EQ(r[0].order, 0u);
    EXPECT_EQ(r[0].size, 100u);
    EXPECT_EQ(r[0].stack, 7u);
    EXPECT_EQ(r[1].id, MakeAllocId(kThread, 11));
    EXPECT_EQ(r[1].alignment, 64u);
    EXPECT_EQ(r[1].address, 0x5000u);
    EXPECT_EQ(r[1].order, 5u);
    EXPECT_EQ(r[1].api, Api::kNewAligned);
    EXPECT_EQ(r[2].tag, RecordTag::kFree);
    EXPECT_EQ(r[2].time_us, 503u);
    EXPECT_EQ(r[2].id, 0u);
    EXPECT_EQ(r[2].address, 0x5000u);
    EXPECT_EQ(r[2].order, AddressOrder(6));
    EXPECT_EQ(r[2].api, Api::kDelete);
    EXPECT_EQ(r[3].tag, RecordTag::kRealloc);
    EXPECT_EQ(r[3].time_us, 504u);
    EXPECT_EQ(r[3].time2_us, 507u);
    EXPECT_EQ(r[3].old_id, 0u);
    EXPECT_EQ(r[3].old_address, 0x7f0000001000u);
    EXPECT_EQ(r[3].old_order, 0u);
    EXPECT_EQ(r[3].address, 0x7f0000001000u);
    EXPECT_EQ(r[3].order, AddressOrder(15));
    EXPECT_EQ(r[3].size, 1ull << 33);
    EXPECT_EQ(r[3].stack, 9u);
    EXPECT_EQ(r[3].id, MakeAllocId(kThread, 12));
    EXPECT_EQ(r[4].address, 0x10u);
    EXPECT_EQ(r[4].time_us, 508u);
    EXPECT_EQ(r[5].block_classes.ids, std::vector<uint64_t>(addresses, addresses + 2));
    EXPECT_EQ(r[6].tag, RecordTag::kInherited);
    EXPECT_EQ(r[6].id, 0x2000u);
    EXPECT_EQ(r[6].size, 48u);
    EXPECT_EQ(r[7].tag, RecordTag::kFreeError);
    EXPECT_EQ(r[7].address, 0x2000u);
    EXPECT_EQ(r[7].id, 0u);
    if (pad != 0) {
      EXPECT_EQ(r.back().tag, RecordTag::kFree);
      EXPECT_EQ(r.back().address, 0x9000u + 16 * (pad - 1));
      EXPECT_EQ(r[r.size() - 2].id, MakeAllocId(kThread, 13 + pad - 1));
    }
    // A version-4 reader of the same bytes fails rather than misreads
    // (a free's row has no id_ref; the columns hold more than it uses).
    DecodeAll(buf.data(), enc.size(), &error);
    EXPECT_NE(error, "");
  }
}

// The address rows' fast path (DecodeAddressHotRecords) gives the records
// and the error the checked path (Next) gives, on valid chunks and on the
// same chunks cut short or with bytes changed.
TEST(RoundTrip, AddressFastPathMatchesTheCheckedPath) {
  std::mt19937_64 rng(22);
  auto decode = [](const std::vector<uint8_t>& c, bool fast, std::string* error) {
    std::vector<Record> out;
    ChunkDecoder d(c.data(), c.size(), false, /*address_frees=*/true);
    Record r;
    for (;;) {
      if (fast) {
        size_t n = d.DecodeAddressHotRecords(SIZE_MAX, [&](const AddressHotRecord& h) {
          Record x;
          x.tag = h.tag;
          x.api = h.api;
          x.time_us = h.time_us;
          x.time2_us = h.time2_us;
          x.size = h.size;
          x.stack = h.stack;
          x.alignment = h.alignment;
          x.address = h.address;
          x.order = h.order;
          x.old_address = h.old_address;
          x.old_order = h.old_order;
          x.id = h.id;
          out.push_back(x);
        });
        if (n != 0) continue;
      }
      if (!d.Next(&r)) break;
      out.push_back(r);
    }
    *error = d.error();
    return out;
  };
  for (int round = 0; round < 200; ++round) {
    std::vector<uint8_t> buf(1 << 14);
    ChunkEncoder enc;
    enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 100, 7});
    uint64_t time = 100;
    for (int i = 0; i < 60; ++i) {
      time += rng() % 3;
      uint64_t a = 0x7f0000000000 + (rng() % 64) * 16, b = 0x1000 + (rng() % 64) * 16;
      uint64_t order = rng() % 4 == 0 ? 1 + rng() % 16 : 0;
      switch (rng() % 4) {
        case 0:
          ASSERT_TRUE(enc.PutAllocAddress(time, Api::kMalloc, rng() % 5000, rng() % 100,
                                          rng() % 2 * 64, a, order));
          break;
        case 1:
          ASSERT_TRUE(enc.PutFreeAddress(time, Api::kFree, a, order));
          break;
        case 2:
          ASSERT_TRUE(enc.PutReallocAddress(time, time + rng() % 2, Api::kRealloc, a, order,
                                            rng() % 100000, rng() % 50, b, rng() % 17));
          break;
        default:
          ASSERT_TRUE(enc.PutStackNode(i + 1, i, 0x400000 + i));
          break;
      }
    }
    size_t size = enc.Seal();
    std::vector<uint8_t> chunk(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(size));
    if (round % 2 == 1) {  // damaged: a few bytes changed after the preamble
      for (int k = 0; k < 3; ++k) {
        chunk[kChunkPreambleBytes + rng() % (size - kChunkPreambleBytes)] =
            static_cast<uint8_t>(rng());
      }
    }
    std::string slow_error, fast_error;
    std::vector<Record> slow = decode(chunk, false, &slow_error);
    std::vector<Record> fast = decode(chunk, true, &fast_error);
    EXPECT_EQ(slow_error, fast_error) << round;
    ASSERT_EQ(slow.size(), fast.size()) << round;
    for (size_t i = 0; i < slow.size(); ++i) {
      const Record& x = slow[i];
      const Record& y = fast[i];
      ASSERT_EQ(x.tag, y.tag) << round << " " << i;
      SCOPED_TRACE(std::to_string(round) + " " + std::to_string(i) + " of " + std::to_string(slow.size()));
      // Other records (a damaged chunk's) come from Next in both.
      if (x.tag != RecordTag::kAlloc && x.tag != RecordTag::kFree &&
          x.tag != RecordTag::kRealloc) {
        continue;
      }
      EXPECT_EQ(x.api, y.api);
      EXPECT_EQ(x.time_us, y.time_us);
      EXPECT_EQ(x.address, y.address);
      EXPECT_EQ(x.order, y.order);
      if (x.tag != RecordTag::kFree) {
        EXPECT_EQ(x.id, y.id);
        EXPECT_EQ(x.size, y.size);
        EXPECT_EQ(x.stack, y.stack);
      }
      if (x.tag == RecordTag::kAlloc) {
        EXPECT_EQ(x.alignment, y.alignment);
      }
      if (x.tag == RecordTag::kRealloc) {
        EXPECT_EQ(x.time2_us, y.time2_us);
        EXPECT_EQ(x.old_address, y.old_address);
        EXPECT_EQ(x.old_order, y.old_order);
      }
    }
  }
}

// Corrupt address rows are errors, never misreads: an order value above
// AddressOrder's range, a free without its order, a truncated realloc.
TEST(RoundTrip, CorruptAddressRowsAreRejected) {
  auto decode = [](uint64_t order, bool drop_last_misc) {
    std::vector<uint8_t> buf(4096);
    ChunkEncoder enc;
    enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 0, 0});
    EXPECT_TRUE(enc.PutFreeAddress(1, Api::kFree, 0x1000, order));
    size_t size = enc.Seal();
    if (drop_last_misc) {  // the misc column is last: shorten it by its last byte
      uint32_t lengths[4];
      std::memcpy(lengths, buf.data() + sizeof(ChunkHeader), sizeof lengths);
      --lengths[3];
      std::memcpy(buf.data() + sizeof(ChunkHeader), lengths, sizeof lengths);
      --size;
    }
    std::string error;
    DecodeAll(buf.data(), size, &error, false, /*address=*/true);
    return error;
  };
  EXPECT_EQ(decode(kAddressCountModulo, false), "");
  EXPECT_NE(decode(kAddressCountModulo + 1, false).find("malformed free record"),
            std::string::npos);
  EXPECT_NE(decode(3, true).find("malformed free record"), std::string::npos);

  std::vector<uint8_t> buf(4096);
  ChunkEncoder enc;
  enc.Begin(buf.data(), buf.size(), ChunkHeader{kThread, 1, 0, 0, 0});
  ASSERT_TRUE(enc.PutReallocAddress(1, 2, Api::kRealloc, 0x1000, 0, 32, 1, 0x2000, 0));
  size_t size = enc.Seal();
  // Every stream shortened in turn: the record never decodes.
  for (int stream = 0; stream < 4; ++stream) {
    std::vector<uint8_t> bad(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(size));
    uint32_t lengths[4];
    std::memcpy(lengths, bad.data() + sizeof(ChunkHeader), sizeof lengths);
    if (lengths[stream] < 1) continue;
    size_t offset = kChunkPreambleBytes;
    for (int i = 0; i <= stream; ++i) offset += lengths[i];
    bad.erase(bad.begin() + static_cast<ptrdiff_t>(offset) - 1);
    --lengths[stream];
    std::memcpy(bad.data() + sizeof(ChunkHeader), lengths, sizeof lengths);
    std::string error;
    std::vector<Record> r = DecodeAll(bad.data(), bad.size(), &error, false, true);
    EXPECT_NE(error, "") << "stream " << stream;
    EXPECT_TRUE(r.empty());
  }
}

// --- files ---------------------------------------------------------------

FileHeader Header(uint32_t version) {
  FileHeader h{};
  std::memcpy(h.magic, kFileMagic, sizeof h.magic);
  h.version = version;
  h.header_size = sizeof h;
  h.page_size = 4096;
  h.pid = 1;
  return h;
}

// A file with `chunks` zstd blocks of one alloc each.
std::string WriteFile(const std::string& dir, uint32_t version, int chunks) {
  std::string path = dir + "/t.hst";
  std::ofstream out(path, std::ios::binary);
  FileHeader h = Header(version);
  out.write(reinterpret_cast<const char*>(&h), sizeof h);
  for (int c = 0; c < chunks; ++c) {
    std::vector<uint8_t> chunk(4096);
    ChunkEncoder enc;
    enc.Begin(chunk.data(), chunk.size(), ChunkHeader{1, 1, static_cast<uint64_t>(c), 0,
                                                      static_cast<uint64_t>(c * 100)});
    for (int i = 0; i < 100; ++i) enc.PutAlloc(i, Api::kMalloc, 16, 0, 0, 0);
    enc.Seal();
    std::vector<uint8_t> z(ZSTD_compressBound(enc.size()));
    size_t n = ZSTD_compress(z.data(), z.size(), chunk.data(), enc.size(), 1);
    BlockHeader b = MakeBlockHeader(chunk.data(), static_cast<uint32_t>(enc.size()),
                                    Codec::kZstd, static_cast<uint32_t>(n));
    out.write(reinterpret_cast<const char*>(&b), sizeof b);
    out.write(reinterpret_cast<const char*>(z.data()), static_cast<std::streamsize>(n));
  }
  return path;
}

TEST(TraceFile, ReadsAllBlocks) {
  std::string path = WriteFile(testing::MakeTempDir(), kFormatVersion, 3);
  auto reader = TraceReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<uint8_t> chunk;
  int n = 0;
  while ((*reader)->NextChunk(&chunk)) ++n;
  EXPECT_EQ(n, 3);
  EXPECT_TRUE((*reader)->status().ok());
  EXPECT_FALSE((*reader)->truncated());
}

TEST(TraceFile, OtherVersionIsRejectedNamingBothVersions) {
  std::string path = WriteFile(testing::MakeTempDir(), 7, 1);
  auto reader = TraceReader::Open(path);
  ASSERT_FALSE(reader.ok());
  std::string message(reader.status().message());
  EXPECT_NE(message.find("version 7"), std::string::npos) << message;
  EXPECT_NE(message.find("version " + std::to_string(kFormatVersion)), std::string::npos)
      << message;
}

// Version 5 is version 4 with compact frees: read with the flag, refused
// without it, and the flag on a version-4 file is refused too.
TEST(TraceFile, CompactVersionNeedsItsFlag) {
  auto open_with = [](uint32_t version, uint32_t flags) {
    std::string path = WriteFile(testing::MakeTempDir(), version, 1);
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(offsetof(FileHeader, flags));
    f.write(reinterpret_cast<const char*>(&flags), sizeof flags);
    f.close();
    return TraceReader::Open(path);
  };
  EXPECT_TRUE(open_with(kFormatVersionCompact, kFileFlagCompactFrees).ok());
  EXPECT_TRUE(open_with(kFormatVersion, 0).ok());
  auto v5_without = open_with(kFormatVersionCompact, 0);
  ASSERT_FALSE(v5_without.ok());
  EXPECT_NE(v5_without.status().message().find("version 5 without the compact-frees flag"),
            std::string::npos)
      << v5_without.status();
  EXPECT_TRUE(open_with(kFormatVersionAddress, kFileFlagAddressFrees).ok());
  auto v6_without = open_with(kFormatVersionAddress, 0);
  ASSERT_FALSE(v6_without.ok());
  EXPECT_NE(v6_without.status().message().find("version 6 without the address-frees flag"),
            std::string::npos)
      << v6_without.status();
  auto v4_address = open_with(kFormatVersion, kFileFlagAddressFrees);
  ASSERT_FALSE(v4_address.ok());
  EXPECT_NE(v4_address.status().message().find("version 4 with the address-frees flag"),
            std::string::npos)
      << v4_address.status();
  EXPECT_FALSE(
      open_with(kFormatVersionAddress, kFileFlagAddressFrees | kFileFlagCompactFrees).ok());
  auto v4_with = open_with(kFormatVersion, kFileFlagCompactFrees);
  ASSERT_FALSE(v4_with.ok());
  EXPECT_NE(v4_with.status().message().find("version 4 with the compact-frees flag"),
            std::string::npos)
      << v4_with.status();
}

TEST(TraceFile, TruncatedFileIsDetected) {
  std::string path = WriteFile(testing::MakeTempDir(), kFormatVersion, 3);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  auto size = static_cast<off_t>(in.tellg());
  ASSERT_EQ(truncate(path.c_str(), size - 5), 0);
  auto reader = TraceReader::Open(path);
  ASSERT_TRUE(reader.ok());
  std::vector<uint8_t> chunk;
  int n = 0;
  while ((*reader)->NextChunk(&chunk)) ++n;
  EXPECT_EQ(n, 2);
  EXPECT_TRUE((*reader)->truncated());
  EXPECT_TRUE((*reader)->status().ok());
}

TEST(TraceFile, RandomBytesGiveErrorsNotCrashes) {
  std::mt19937 rng(7);
  std::string dir = testing::MakeTempDir();
  for (int round = 0; round < 200; ++round) {
    std::string path = dir + "/r.hst";
    std::vector<char> bytes(rng() % 2000);
    for (char& b : bytes) b = static_cast<char>(rng());
    if (round % 2 == 0 && bytes.size() >= sizeof(FileHeader)) {
      FileHeader h = Header(kFormatVersion);  // valid header, garbage after
      std::memcpy(bytes.data(), &h, sizeof h);
    }
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    auto reader = TraceReader::Open(path);
    if (!reader.ok()) continue;
    std::vector<uint8_t> chunk;
    while ((*reader)->NextChunk(&chunk)) {
      ChunkDecoder d(chunk.data(), chunk.size());
      Record r;
      while (d.Next(&r)) {
      }
    }
  }
  // Garbage chunks straight into the decoder.
  for (int round = 0; round < 2000; ++round) {
    std::vector<uint8_t> chunk(rng() % 300);
    for (uint8_t& b : chunk) b = static_cast<uint8_t>(rng());
    ChunkDecoder d(chunk.data(), chunk.size());
    Record r;
    int n = 0;
    while (d.Next(&r)) ++n;
    if (chunk.size() < sizeof(ChunkHeader)) {
      EXPECT_FALSE(d.ok());
    }
  }
}

}  // namespace
}  // namespace heapsight::format
