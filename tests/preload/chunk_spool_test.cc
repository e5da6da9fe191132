// tests/preload/chunk_spool_test.cc: the chunk spool (preload/chunk_spool.h):
// the file beside the trace (mode 0600, locked while mapped, removed when
// empty), chunks copied into slots as whole raw blocks, written back in
// hand-over order, a full spool refusing more, and a fork child's unmap
// that leaves the parent's slots alone.
#include "preload/chunk_spool.h"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "format/spool_format.h"
#include "format/trace_format.h"
#include "preload/trace_writer.h"
#include "tests/support/run_traced.h"

namespace heapsight::preload {
namespace {

constexpr size_t kChunk = 4096;

void OpenTraceIn(const std::string& dir) {
  format::FileHeader h{};
  std::memcpy(h.magic, format::kFileMagic, sizeof h.magic);
  h.version = format::kFormatVersion;
  h.header_size = sizeof h;
  ASSERT_EQ(OpenTrace((dir + "/t.hst").c_str(), h), 0);
}

// A chunk of `size` bytes whose header says (thread 7, `sequence`), then
// filler bytes.
std::vector<uint8_t> Chunk(uint64_t sequence, size_t size) {
  std::vector<uint8_t> c(size, static_cast<uint8_t>(sequence));
  format::ChunkHeader h{};
  h.thread_index = 7;
  h.tid = 77;
  h.sequence = sequence;
  std::memcpy(c.data(), &h, sizeof h);
  return c;
}

// The (sequence, raw size, codec) of every block of a trace, in file order.
struct Block {
  uint64_t sequence;
  uint32_t raw_size;
  uint8_t codec;
};
std::vector<Block> Blocks(const std::string& bytes) {
  std::vector<Block> out;
  size_t at = sizeof(format::FileHeader);
  while (at + sizeof(format::BlockHeader) <= bytes.size()) {
    format::BlockHeader b;
    std::memcpy(&b, bytes.data() + at, sizeof b);
    if (b.magic != format::kBlockMagic) break;
    out.push_back({b.chunk.sequence, b.raw_size, b.codec});
    at += sizeof b + b.payload_size;
  }
  return out;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

TEST(ChunkSpool, WritesHandedOverChunksInOrderAndRemovesTheFile) {
  std::string dir = testing::MakeTempDir();
  OpenTraceIn(dir);
  ASSERT_EQ(OpenSpool(kChunk), 0);
  std::string spool = dir + "/t.hst.spool";
  struct stat st;
  ASSERT_EQ(stat(spool.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // Locked while mapped, though our fd is closed.
  int fd = open(spool.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_NE(flock(fd, LOCK_EX | LOCK_NB), 0);
  close(fd);
  EXPECT_TRUE(SpoolEmpty());
  for (uint64_t seq = 0; seq < 3; ++seq) {
    std::vector<uint8_t> c = Chunk(seq, 1000 + seq);
    ASSERT_TRUE(SpoolChunk(c.data(), c.size()));
  }
  EXPECT_FALSE(SpoolEmpty());
  EXPECT_EQ(SpoolSlotsFilling(), 0u);
  // The sealed slots are in the file itself (what a SIGKILL leaves).
  std::string file = testing::ReadFile(spool);
  format::SpoolHeader h;
  std::memcpy(&h, file.data(), sizeof h);
  EXPECT_EQ(std::memcmp(h.magic, format::kSpoolMagic, 8), 0);
  EXPECT_EQ(h.slot_count, kSpoolSlots);
  EXPECT_EQ(h.pid, static_cast<uint64_t>(getpid()));
  for (uint32_t i = 0; i < 3; ++i) {
    format::SpoolSlotHeader s;
    std::memcpy(&s, file.data() + sizeof h + i * h.slot_bytes, sizeof s);
    EXPECT_EQ(s.state, format::kSpoolSlotSealed);
    EXPECT_EQ(s.block_bytes, sizeof(format::BlockHeader) + 1000 + i);
    format::BlockHeader b;
    std::memcpy(&b, file.data() + sizeof h + i * h.slot_bytes + sizeof s, sizeof b);
    EXPECT_EQ(b.magic, format::kBlockMagic);
    EXPECT_EQ(b.codec, static_cast<uint8_t>(format::Codec::kRaw));
    EXPECT_EQ(b.chunk.sequence, i);
  }
  std::vector<uint8_t> scratch(kBlockHeaderRoom + CompressBound(kChunk));
  int hint = 0, err = -1;
  int written = 0;
  // Level 3: the writer's zstd path (the filler compresses well).
  while (WriteOldestSealed(3, scratch.data(), &hint, &err)) {
    EXPECT_EQ(err, 0);
    ++written;
  }
  EXPECT_EQ(written, 3);
  EXPECT_TRUE(SpoolEmpty());
  std::vector<Block> blocks = Blocks(testing::ReadFile(dir + "/t.hst"));
  ASSERT_EQ(blocks.size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(blocks[i].sequence, i);
    EXPECT_EQ(blocks[i].raw_size, 1000 + i);
    EXPECT_EQ(blocks[i].codec, static_cast<uint8_t>(format::Codec::kZstd));
  }
  CloseSpool();
  EXPECT_FALSE(Exists(spool));
}

TEST(ChunkSpool, AFullSpoolRefusesAndALeftoverChunkKeepsTheFile) {
  std::string dir = testing::MakeTempDir();
  OpenTraceIn(dir);
  ASSERT_EQ(OpenSpool(kChunk), 0);
  std::vector<uint8_t> c = Chunk(0, 2000);
  for (uint32_t i = 0; i < kSpoolSlots; ++i) ASSERT_TRUE(SpoolChunk(c.data(), c.size()));
  EXPECT_FALSE(SpoolChunk(c.data(), c.size()));  // the caller writes it inline
  // Too big for a slot: refused, never cut.
  std::vector<uint8_t> big = Chunk(1, 2 * kChunk);
  EXPECT_FALSE(SpoolChunk(big.data(), big.size()));
  std::vector<uint8_t> scratch(kBlockHeaderRoom + CompressBound(kChunk));
  int hint = 0, err = -1;
  ASSERT_TRUE(WriteOldestSealed(0, scratch.data(), &hint, &err));
  EXPECT_TRUE(SpoolChunk(c.data(), c.size()));  // a slot came free
  CloseSpool();
  // Chunks still sealed: the file stays for a reader to recover.
  EXPECT_TRUE(Exists(dir + "/t.hst.spool"));
}

TEST(ChunkSpool, AForkChildLeavesTheParentsSlotsAlone) {
  std::string dir = testing::MakeTempDir();
  OpenTraceIn(dir);
  ASSERT_EQ(OpenSpool(kChunk), 0);
  std::vector<uint8_t> c = Chunk(0, 1500);
  ASSERT_TRUE(SpoolChunk(c.data(), c.size()));
  pid_t pid = fork();
  if (pid == 0) {
    ForgetSpoolInChild();
    // No spool in the child: nothing handed over, nothing written.
    bool refused = !SpoolChunk(c.data(), c.size());
    std::vector<uint8_t> scratch(kBlockHeaderRoom + CompressBound(kChunk));
    int hint = 0, err = 0;
    bool none = !WriteOldestSealed(0, scratch.data(), &hint, &err);
    CloseSpool();
    _exit(refused && none ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_FALSE(SpoolEmpty());  // still the parent's sealed chunk
  EXPECT_TRUE(Exists(dir + "/t.hst.spool"));
  std::vector<uint8_t> scratch(kBlockHeaderRoom + CompressBound(kChunk));
  int hint = 0, err = -1;
  ASSERT_TRUE(WriteOldestSealed(0, scratch.data(), &hint, &err));
  CloseSpool();
  EXPECT_FALSE(Exists(dir + "/t.hst.spool"));
}

TEST(ChunkSpool, NoSpoolUnderASmallFileSizeLimit) {
  std::string dir = testing::MakeTempDir();
  OpenTraceIn(dir);
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit rl = {64 * 1024, 64 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(2);
    // Sizing the file would raise SIGXFSZ: refused before, no file.
    int rc = OpenSpool(kChunk);
    _exit(rc == EFBIG && !Exists(dir + "/t.hst.spool") ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace heapsight::preload
