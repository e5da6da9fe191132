// tests/format/spool_recovery_test.cc: recovering a dead writer's spool
// (format/spool_recovery.h): sealed and mid-write slots are appended in
// hand-over order, blocks the trace already has are skipped, a block cut
// off by the kill is removed first, slots being filled and corrupt slots are
// ignored, a locked (live) spool and a read-only trace are left alone, a
// corrupt spool header is an error; TraceReader::Open recovers on its own.
#include "format/spool_recovery.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "format/chunk_encoder.h"
#include "format/spool_format.h"
#include "format/trace_format.h"
#include "format/trace_reader.h"
#include "tests/support/run_traced.h"

namespace heapsight::format {
namespace {

constexpr uint64_t kSlotBytes = 8192;
constexpr uint32_t kSlots = 6;

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A whole raw block of thread 1 with `allocs` allocation records, chunk
// number `sequence`.
std::string RawBlock(uint64_t sequence, int allocs) {
  std::vector<uint8_t> buf(4096);
  ChunkHeader h{};
  h.thread_index = 1;
  h.tid = 11;
  h.sequence = sequence;
  h.first_alloc_counter = sequence * 100;
  ChunkEncoder e;
  e.Begin(buf.data(), buf.size(), h);
  for (int i = 0; i < allocs; ++i) EXPECT_TRUE(e.PutAlloc(0, Api::kMalloc, 100 + i, 0, 0, 0));
  size_t n = e.Seal();
  BlockHeader b = MakeBlockHeader(e.data(), static_cast<uint32_t>(n), Codec::kRaw,
                                  static_cast<uint32_t>(n));
  return std::string(reinterpret_cast<const char*>(&b), sizeof b) +
         std::string(reinterpret_cast<const char*>(e.data()), n);
}

std::string FileHeaderBytes() {
  FileHeader h{};
  std::memcpy(h.magic, kFileMagic, sizeof h.magic);
  h.version = kFormatVersion;
  h.header_size = sizeof h;
  return std::string(reinterpret_cast<const char*>(&h), sizeof h);
}

struct SlotSpec {
  uint32_t state;
  uint64_t ticket;
  std::string block;
};

std::string SpoolBytes(const std::vector<SlotSpec>& slots) {
  SpoolHeader h{};
  std::memcpy(h.magic, kSpoolMagic, sizeof h.magic);
  h.version = kSpoolVersion;
  h.slot_count = kSlots;
  h.slot_bytes = kSlotBytes;
  std::string out(reinterpret_cast<const char*>(&h), sizeof h);
  out.resize(sizeof h + kSlots * kSlotBytes, '\0');
  for (size_t i = 0; i < slots.size(); ++i) {
    SpoolSlotHeader s{};
    s.state = slots[i].state;
    s.block_bytes = static_cast<uint32_t>(slots[i].block.size());
    s.ticket = slots[i].ticket;
    size_t at = sizeof h + i * kSlotBytes;
    std::memcpy(&out[at], &s, sizeof s);
    std::memcpy(&out[at + sizeof s], slots[i].block.data(), slots[i].block.size());
  }
  return out;
}

// The sequences of the trace's chunks, as the reader sees them.
std::vector<uint64_t> Sequences(const std::string& path, bool* truncated = nullptr) {
  auto reader = TraceReader::Open(path);
  EXPECT_TRUE(reader.ok()) << reader.status();
  std::vector<uint64_t> out;
  if (!reader.ok()) return out;
  std::vector<uint8_t> chunk;
  while ((*reader)->NextChunk(&chunk)) {
    ChunkHeader h;
    std::memcpy(&h, chunk.data(), sizeof h);
    out.push_back(h.sequence);
  }
  EXPECT_TRUE((*reader)->status().ok()) << (*reader)->status();
  if (truncated != nullptr) *truncated = (*reader)->truncated();
  return out;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

TEST(SpoolRecovery, AppendsWhatTheTraceLacksInHandOverOrder) {
  std::string dir = testing::MakeTempDir();
  std::string trace = dir + "/t.hst";
  std::string block0 = RawBlock(0, 5);
  std::string block3 = RawBlock(3, 2);
  // Chunk 0 was written; the kill cut chunk 3's write in the middle.
  WriteAll(trace, FileHeaderBytes() + block0 + block3.substr(0, 30));
  std::string corrupt = RawBlock(9, 1);
  corrupt[sizeof(BlockHeader) + 8] ^= 1;  // chunk header no longer matches the block's copy
  WriteAll(trace + ".spool",
           SpoolBytes({{kSpoolSlotSealed, 3, RawBlock(2, 4)},
                       {kSpoolSlotWriting, 1, RawBlock(0, 5)},  // already in the trace
                       {kSpoolSlotWriting, 2, RawBlock(1, 3)},  // killed mid-write: not yet
                       {kSpoolSlotFilling, 4, RawBlock(3, 2)},  // incomplete copy: ignored
                       {kSpoolSlotFree, 5, RawBlock(4, 2)},
                       {kSpoolSlotSealed, 6, corrupt}}));
  absl::StatusOr<int> n = RecoverSpool(trace);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2);
  EXPECT_FALSE(Exists(trace + ".spool"));
  std::string bytes = testing::ReadFile(trace);
  EXPECT_EQ(bytes, FileHeaderBytes() + block0 + RawBlock(1, 3) + RawBlock(2, 4));
  bool truncated = true;
  EXPECT_EQ(Sequences(trace, &truncated), (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_FALSE(truncated);
  // Nothing left: a second recovery does nothing.
  EXPECT_EQ(*RecoverSpool(trace), 0);
}

TEST(SpoolRecovery, TheReaderRecoversOnOpen) {
  std::string dir = testing::MakeTempDir();
  std::string trace = dir + "/t.hst";
  WriteAll(trace, FileHeaderBytes());
  WriteAll(trace + ".spool", SpoolBytes({{kSpoolSlotSealed, 1, RawBlock(0, 7)}}));
  EXPECT_EQ(Sequences(trace), (std::vector<uint64_t>{0}));
  EXPECT_FALSE(Exists(trace + ".spool"));
}

TEST(SpoolRecovery, ALiveWritersSpoolIsLeftAlone) {
  std::string dir = testing::MakeTempDir();
  std::string trace = dir + "/t.hst";
  WriteAll(trace, FileHeaderBytes());
  WriteAll(trace + ".spool", SpoolBytes({{kSpoolSlotSealed, 1, RawBlock(0, 7)}}));
  int fd = open((trace + ".spool").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX), 0);  // as the writing process holds it
  EXPECT_EQ(*RecoverSpool(trace), 0);
  EXPECT_TRUE(Sequences(trace).empty());
  EXPECT_TRUE(Exists(trace + ".spool"));
  close(fd);  // the writer died
  EXPECT_EQ(*RecoverSpool(trace), 1);
}

TEST(SpoolRecovery, AReadOnlyTraceIsLeftAlone) {
  if (geteuid() == 0) GTEST_SKIP() << "root writes read-only files";
  std::string dir = testing::MakeTempDir();
  std::string trace = dir + "/t.hst";
  WriteAll(trace, FileHeaderBytes());
  WriteAll(trace + ".spool", SpoolBytes({{kSpoolSlotSealed, 1, RawBlock(0, 7)}}));
  ASSERT_EQ(chmod(trace.c_str(), 0400), 0);
  EXPECT_EQ(*RecoverSpool(trace), 0);
  EXPECT_TRUE(Exists(trace + ".spool"));
}

TEST(SpoolRecovery, ACorruptSpoolIsAnErrorAndStays) {
  std::string dir = testing::MakeTempDir();
  std::string trace = dir + "/t.hst";
  WriteAll(trace, FileHeaderBytes());
  std::string spool = SpoolBytes({{kSpoolSlotSealed, 1, RawBlock(0, 7)}});
  SpoolHeader h;
  std::memcpy(&h, spool.data(), sizeof h);
  h.slot_count = kMaxSpoolSlots + 1;
  std::memcpy(&spool[0], &h, sizeof h);
  WriteAll(trace + ".spool", spool);
  EXPECT_FALSE(RecoverSpool(trace).ok());
  EXPECT_TRUE(Exists(trace + ".spool"));
  // The reader still opens the trace.
  EXPECT_TRUE(Sequences(trace).empty());
  // No spool at all: nothing to do.
  EXPECT_EQ(*RecoverSpool(dir + "/other.hst"), 0);
}

}  // namespace
}  // namespace heapsight::format
