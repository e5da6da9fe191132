// tests/analyzer/model/pairing_converter_test.cc: an address-frees trace
// (version 6) converted by PairingConverter is the version-4 trace that
// table mode writes for the same events: the same records, thread by
// thread, with the frees naming the ids the table would have given them;
// and what cannot be converted is refused without leaving a file behind.
#include "analyzer/model/pairing_converter.h"

#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "analyzer/model/trace_model.h"
#include "format/chunk_decoder.h"
#include "format/trace_reader.h"
#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer {
namespace {

using format::Api;
using format::Record;
using format::RecordTag;
using testing::TestTraceWriter;

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".hst";
}

std::string WriteTrace(TestTraceWriter& w, const std::string& name) {
  std::string path = TempPath(name);
  unlink(path.c_str());
  EXPECT_TRUE(w.WriteFile(path));
  return path;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// Every record of a trace as one line, per thread in the thread's order
// (chunk boundaries and file order left out: they are the writer's choice).
std::map<uint32_t, std::vector<std::string>> RecordsByThread(const std::string& path,
                                                             format::FileHeader* header) {
  std::map<uint32_t, std::vector<std::string>> lines;
  absl::StatusOr<std::unique_ptr<format::TraceReader>> reader = format::TraceReader::Open(path);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return lines;
  *header = (*reader)->header();
  const bool address = format::HasAddressFrees(*header);
  std::map<uint32_t, std::map<uint64_t, std::vector<std::string>>> chunks;
  std::vector<uint8_t> chunk;
  while ((*reader)->NextChunk(&chunk)) {
    format::ChunkDecoder d(chunk.data(), chunk.size(), false, address);
    EXPECT_TRUE(d.ok()) << d.error();
    std::vector<std::string>& out = chunks[d.header().thread_index][d.header().sequence];
    Record r;
    while (d.Next(&r)) {
      std::string line =
          absl::StrCat(static_cast<int>(r.tag), " t", r.time_us, " api", static_cast<int>(r.api),
                       " size", r.size, " stack", r.stack, " align", r.alignment, " id", r.id,
                       " old", r.old_id, " t2", r.time2_us);
      switch (r.tag) {
        case RecordTag::kStackNode:
          absl::StrAppend(&line, " node", r.stack_node.node, "/", r.stack_node.parent, "/",
                          r.stack_node.ip);
          break;
        case RecordTag::kMarker:
          absl::StrAppend(&line, " ", std::string(r.marker_name));
          break;
        case RecordTag::kProcess:
          absl::StrAppend(&line, " ", std::string(r.process.executable), " argc", r.process.argv.size());
          break;
        case RecordTag::kModule:
          absl::StrAppend(&line, " ", std::string(r.module.path), " ", r.module.id, "@", r.module.load_address,
                          " segs", r.module.segments.size());
          break;
        case RecordTag::kBlockClasses:
          absl::StrAppend(&line, " scan", r.block_classes.scan, " class",
                          static_cast<int>(r.block_classes.leak_class));
          for (uint64_t id : r.block_classes.ids) absl::StrAppend(&line, " ", id);
          break;
        case RecordTag::kFreeError:
          absl::StrAppend(&line, " error", static_cast<int>(r.free_error.error), " at",
                          r.address);
          break;
        case RecordTag::kEnd:
          absl::StrAppend(&line, " reason", static_cast<int>(r.end.reason), " status",
                          r.end.exit_status);
          break;
        case RecordTag::kFork:
          absl::StrAppend(&line, " fork child", r.child_pid);
          break;
        default:
          break;
      }
      out.push_back(line);
    }
    EXPECT_TRUE(d.ok()) << d.error();
  }
  EXPECT_TRUE((*reader)->status().ok());
  for (auto& [thread, by_sequence] : chunks) {
    for (auto& [sequence, records] : by_sequence) {
      lines[thread].insert(lines[thread].end(), records.begin(), records.end());
    }
  }
  return lines;
}

constexpr uint64_t kA = 0x10000, kB = 0x10040, kC = 0x10080;

// One program written both ways (ids in v4, addresses in v6): two threads,
// a free of the other thread's block, reallocs in place and moved, a
// memalign, a leak scan whose classes list several blocks, a double free,
// and the records that pass through unchanged.
void WriteBothWays(TestTraceWriter& v4, TestTraceWriter& v6) {
  v6.UseAddressFrees();
  for (TestTraceWriter* w : {&v4, &v6}) {
    w->Process(0, 1, "/bin/prog", {"prog", "arg"});
    w->Module(0, 1, 1, 0x400000, "/bin/prog", "\x01\x02", {{0, 0x1000, 0, 5}});
    w->StackNode(0, 1, 0, 0x401000);
    w->StackNode(0, 2, 1, 0x401100);
    w->StackNode(1, 3, 1, 0x401200);
    w->Marker(0, 2, "start");
  }
  // Thread 0: a (A), b (B); thread 1: c (C) then frees a.
  const uint64_t a = v4.Alloc(0, 10, Api::kMalloc, 100, 1);
  v6.AllocAt(0, 10, Api::kMalloc, 100, 1, kA);
  const uint64_t b = v4.Alloc(0, 11, Api::kNew, 24, 2);
  v6.AllocAt(0, 11, Api::kNew, 24, 2, kB);
  v4.Flush(0);
  v6.Flush(0);
  const uint64_t c = v4.Alloc(1, 12, Api::kMalloc, 8, 3);
  v6.AllocAt(1, 12, Api::kMalloc, 8, 3, kC);
  v4.Free(1, 13, a);
  v6.FreeAt(1, 13, kA);
  // Thread 0 reallocates b in place, then c (thread 1's) to A.
  const uint64_t b2 = v4.Realloc(0, 14, b, 32, 2);
  v6.ReallocAtAddress(0, 14, 14, kB, 32, 2, kB);
  const uint64_t c2 = v4.ReallocAt(0, 15, 16, c, 200, 1);
  v6.ReallocAtAddress(0, 15, 16, kC, 200, 1, kA);
  v4.Flush(1);
  v6.Flush(1);
  // A leak scan: both live blocks definitely lost (v6 lists addresses, in
  // address order; v4 ids, ascending); then a double free of C.
  for (TestTraceWriter* w : {&v4, &v6}) {
    w->LeakScan(0, 20, 1);
    w->Rss(0, 20, 1 << 20);
  }
  v4.BlockClasses(0, 1, format::LeakClass::kDefinite, {b2, c2});
  v6.BlockClasses(0, 1, format::LeakClass::kDefinite, {kA, kB});
  v4.FreeError(0, 21, Api::kFree, format::FreeError::kDoubleFree, kC, 1, c);
  v6.FreeError(0, 21, Api::kFree, format::FreeError::kDoubleFree, kC, 1, 0);
  for (TestTraceWriter* w : {&v4, &v6}) {
    w->AllocFailed(1, 22, 1ull << 40);
    w->End(0, 30, 3);
  }
}

TEST(PairingConverterTest, ConvertedTraceHasTheTableModeRecords) {
  TestTraceWriter v4, v6;
  WriteBothWays(v4, v6);
  const std::string in4 = WriteTrace(v4, "conv_v4");
  const std::string in6 = WriteTrace(v6, "conv_v6");
  const std::string out = TempPath("conv_out");
  unlink(out.c_str());
  PairingConversionStats stats;
  ASSERT_TRUE(ConvertAddressTrace(in6, out, 3, &stats).ok());
  EXPECT_EQ(stats.pairing.forced, 0u);
  EXPECT_EQ(stats.records_in, stats.records_out);
  format::FileHeader h4, hc;
  const auto expected = RecordsByThread(in4, &h4);
  const auto converted = RecordsByThread(out, &hc);
  EXPECT_EQ(hc.version, format::kFormatVersion);
  EXPECT_EQ(hc.flags, h4.flags);
  EXPECT_EQ(hc.pid, h4.pid);
  EXPECT_EQ(hc.start_monotonic_ns, h4.start_monotonic_ns);
  EXPECT_EQ(converted, expected);
  // The file is the user's alone, as the preload's traces are.
  struct stat st;
  ASSERT_EQ(stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // And the analysis reads the same profile from both.
  absl::StatusOr<ProcessProfile> p4 = AnalyzeTrace(in4), pc = AnalyzeTrace(out);
  ASSERT_TRUE(p4.ok() && pc.ok());
  EXPECT_EQ(pc->totals.leaked_blocks, 2u);
  EXPECT_EQ(pc->totals.leaked_bytes, p4->totals.leaked_bytes);
  EXPECT_EQ(pc->totals.frees, p4->totals.frees);
  EXPECT_EQ(pc->totals.bad_frees, 1u);
}

// Writes both traces, converts the version-6 one and expects, thread by
// thread, the version-4 one's records. Returns the conversion's counts;
// `converted` (optional) receives its path.
PairingConversionStats ConvertAndCompare(TestTraceWriter& v4, TestTraceWriter& v6,
                                         const std::string& name,
                                         std::string* converted = nullptr) {
  const std::string in4 = WriteTrace(v4, name + "_v4");
  const std::string in6 = WriteTrace(v6, name + "_v6");
  const std::string out = TempPath(name + "_out");
  unlink(out.c_str());
  PairingConversionStats stats;
  absl::Status s = ConvertAddressTrace(in6, out, 0, &stats);
  EXPECT_TRUE(s.ok()) << s;
  format::FileHeader h4, hc;
  EXPECT_EQ(RecordsByThread(out, &hc), RecordsByThread(in4, &h4));
  if (converted != nullptr) *converted = out;
  return stats;
}

// Thread 1 frees thread 0's block, and thread 1's chunk is first in the
// file: the merge reads thread 0's allocation (earlier) first, so nothing
// waits in the pairing.
TEST(PairingConverterTest, FreeReadBeforeItsAllocationIsMergedAfterIt) {
  TestTraceWriter v4, v6;
  v6.UseAddressFrees();
  for (TestTraceWriter* w : {&v4, &v6}) w->StackNode(0, 1, 0, 0x1000);
  const uint64_t a = v4.Alloc(0, 10, Api::kMalloc, 64, 1);
  v6.AllocAt(0, 10, Api::kMalloc, 64, 1, kA);
  v4.Free(1, 11, a);
  v6.FreeAt(1, 11, kA);
  for (TestTraceWriter* w : {&v4, &v6}) {
    w->Marker(1, 12, "after");
    w->Flush(1);  // thread 1's chunk first in the file
    w->Flush(0);
    w->End(0, 20);
  }
  const PairingConversionStats stats = ConvertAndCompare(v4, v6, "held");
  EXPECT_EQ(stats.pairing.held, 0u);
  EXPECT_EQ(stats.pairing.forced, 0u);
}

// Why the converter merges by time (pairing_converter.h): in file order
// thread 1's hand-off at A (A's 41st event: order value 1 + 41 % 16) is
// read before thread 0's 40 events there, and after thread 0's 8th the
// 4-bit count already matches (8 = 40 mod 16): it would be applied 32
// events early, and thread 0's next allocation at A would find thread 1's
// block live. In time order it comes after the 40th, as in table mode.
TEST(PairingConverterTest, HandOffCountsDoNotAliasAcrossAChunk) {
  TestTraceWriter v4, v6;
  v6.UseAddressFrees();
  for (TestTraceWriter* w : {&v4, &v6}) w->StackNode(0, 1, 0, 0x1000);
  for (uint64_t i = 0; i < 20; ++i) {
    const uint64_t a = v4.Alloc(0, 10 + 2 * i, Api::kMalloc, 64, 1);
    v6.AllocAt(0, 10 + 2 * i, Api::kMalloc, 64, 1, kA);
    v4.Free(0, 11 + 2 * i, a);
    v6.FreeAt(0, 11 + 2 * i, kA);
  }
  const uint64_t b = v4.Alloc(1, 100, Api::kMalloc, 32, 1);
  v6.AllocAt(1, 100, Api::kMalloc, 32, 1, kA);
  v4.Free(1, 101, b);
  v6.FreeAt(1, 101, kA);
  for (TestTraceWriter* w : {&v4, &v6}) {
    w->Flush(1);  // thread 1's chunk first in the file
    w->Flush(0);
    w->End(0, 200);
  }
  std::string out;
  const PairingConversionStats stats = ConvertAndCompare(v4, v6, "alias", &out);
  EXPECT_EQ(stats.pairing.forced, 0u);
  EXPECT_EQ(stats.pairing.phantom_frees, 0u);
  EXPECT_EQ(stats.pairing.unknown_frees, 0u);
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(out);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->totals.frees, 21u);
  EXPECT_EQ(p->totals.leaked_blocks, 0u);
}

// A process that forks is converted, its kFork record with it (its
// children's version-6 traces read the version-6 original: the converter
// writes a new file).
TEST(PairingConverterTest, ForkingParentKeepsItsForkRecord) {
  TestTraceWriter v4(4242, 1, 512), v6(4242, 1, 512);
  v6.UseAddressFrees();
  for (TestTraceWriter* w : {&v4, &v6}) w->StackNode(0, 1, 0, 0x1000);
  std::vector<uint64_t> ids;
  for (uint64_t i = 0; i < 40; ++i) {
    ids.push_back(v4.Alloc(0, 10 + i, Api::kMalloc, 8, 1));
    v6.AllocAt(0, 10 + i, Api::kMalloc, 8, 1, kA + 64 * i);
  }
  for (TestTraceWriter* w : {&v4, &v6}) w->Fork(0, 100, 4243);
  v4.Free(0, 110, ids[3]);
  v6.FreeAt(0, 110, kA + 64 * 3);
  for (TestTraceWriter* w : {&v4, &v6}) w->End(0, 120);
  std::string out;
  ConvertAndCompare(v4, v6, "parent", &out);
  format::FileHeader hc;
  const auto got = RecordsByThread(out, &hc);
  int forks = 0;
  for (const auto& [thread, lines] : got) {
    for (const std::string& line : lines) forks += line.find("fork child4243") != std::string::npos;
  }
  EXPECT_EQ(forks, 1);
}

TEST(PairingConverterTest, RefusesWhatItCannotConvertAndLeavesNoFile) {
  const std::string out = TempPath("refused_out");
  // A version-4 trace.
  {
    TestTraceWriter v4;
    v4.StackNode(0, 1, 0, 0x1000);
    v4.Alloc(0, 10, Api::kMalloc, 8, 1);
    const std::string in = WriteTrace(v4, "refused_v4");
    unlink(out.c_str());
    absl::Status s = ConvertAddressTrace(in, out);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_FALSE(Exists(out));
  }
  // A fork child's without its parent's trace (none beside it, none named
  // by a kProcess record): its inherited blocks would have no stacks.
  {
    TestTraceWriter v6;
    v6.UseAddressFrees();
    v6.EditHeader([](format::FileHeader& h) { h.flags |= format::kFileFlagForkChild; });
    v6.AllocAt(0, 10, Api::kMalloc, 8, 0, kA);
    const std::string in = WriteTrace(v6, "refused_child");
    absl::Status s = ConvertAddressTrace(in, out);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_NE(s.message().find("fork child"), std::string::npos) << s;
    EXPECT_FALSE(Exists(out));
  }
  // An output that exists already is not overwritten.
  {
    TestTraceWriter v6;
    v6.UseAddressFrees();
    v6.AllocAt(0, 10, Api::kMalloc, 8, 0, kA);
    const std::string in = WriteTrace(v6, "refused_exists");
    ASSERT_TRUE(ConvertAddressTrace(in, out).ok());
    absl::Status s = ConvertAddressTrace(in, out);
    EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
    EXPECT_TRUE(Exists(out));
    unlink(out.c_str());
  }
}

// A damaged chunk is an error naming the trace, and the half-written
// output goes.
TEST(PairingConverterTest, DamagedInputIsAnErrorAndLeavesNoFile) {
  TestTraceWriter v6(4242, 1, 512);
  v6.UseAddressFrees();
  for (int i = 0; i < 200; ++i) v6.AllocAt(0, 10 + i, Api::kMalloc, 8, 0, kA + 64 * i);
  const std::string in = WriteTrace(v6, "damaged_v6");
  // The first chunk's first record byte (file header, block header,
  // chunk preamble before it; the block is raw) becomes 0, which no record
  // starts with.
  {
    FILE* f = fopen(in.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    fseek(f, sizeof(format::FileHeader) + sizeof(format::BlockHeader) +
                 format::kChunkPreambleBytes, SEEK_SET);
    fputc(0, f);
    fclose(f);
  }
  const std::string out = TempPath("damaged_out");
  unlink(out.c_str());
  absl::Status s = ConvertAddressTrace(in, out);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(in), std::string::npos) << s;
  EXPECT_FALSE(Exists(out));
}

}  // namespace
}  // namespace heapsight::analyzer
