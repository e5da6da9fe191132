// tests/analyzer/model/trace_tail_test.cc: TraceTail on a file that grows
// byte by byte: only whole blocks are handed over, a cut block is retried
// (never an error), a corrupt block is an error, and release_consumed
// gives back the disk space of what was read.
#include "analyzer/model/trace_tail.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer {
namespace {

using format::Api;
using testing::TestTraceWriter;

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".hst";
}

void WriteBytes(const std::string& path, const std::string& bytes, size_t n) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, bytes.data(), n), static_cast<ssize_t>(n));
  close(fd);
}

TEST(TraceTailTest, HandsOverWholeBlocksOnlyAndRetriesACutOne) {
  TestTraceWriter w;
  for (int i = 0; i < 4; ++i) {
    w.Alloc(0, 10 + i, Api::kMalloc, 100, 0);
    w.Flush(0);
  }
  w.set_zstd(true);
  w.Alloc(0, 20, Api::kMalloc, 100, 0);
  w.Flush(0);
  const std::string& bytes = w.bytes();
  const std::vector<size_t>& offsets = w.block_offsets();
  ASSERT_EQ(offsets.size(), 5u);
  std::string path = TempPath("tail_grow");
  TraceTail tail(path);
  auto count = [&]() -> size_t {
    absl::StatusOr<size_t> n = tail.Poll([](const std::vector<uint8_t>&) { return absl::OkStatus(); });
    EXPECT_TRUE(n.ok()) << n.status();
    return n.ok() ? *n : 0;
  };
  // Not there yet, then only part of the file header.
  absl::StatusOr<size_t> missing = tail.Poll([](const std::vector<uint8_t>&) { return absl::OkStatus(); });
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  WriteBytes(path, bytes, 30);
  EXPECT_EQ(count(), 0u);
  EXPECT_FALSE(tail.has_header());
  // Every prefix: the blocks wholly inside it, each once.
  size_t seen = 0;
  for (size_t n = 64; n <= bytes.size(); n += 7) {
    WriteBytes(path, bytes, n);
    seen += count();
    size_t whole = 0;
    for (size_t i = 0; i < offsets.size(); ++i) {
      size_t end = i + 1 < offsets.size() ? offsets[i + 1] : bytes.size();
      if (end <= n) ++whole;
    }
    ASSERT_EQ(seen, whole) << "prefix " << n;
    // What a partly written block leaves: the rest of the file as it was.
    if (tail.has_header()) {
      EXPECT_EQ(tail.consumed() + tail.unread(), n) << "prefix " << n;
    }
  }
  WriteBytes(path, bytes, bytes.size());
  seen += count();
  EXPECT_EQ(seen, 5u);
  EXPECT_EQ(tail.consumed(), bytes.size());
  EXPECT_EQ(tail.unread(), 0u);
  EXPECT_TRUE(tail.has_header());
  EXPECT_EQ(tail.header().pid, 4242u);
}

TEST(TraceTailTest, ACorruptBlockIsAnError) {
  TestTraceWriter w;
  w.Alloc(0, 10, Api::kMalloc, 100, 0);
  w.Flush(0);
  std::string bytes = w.bytes();
  bytes[w.block_offsets()[0]] ^= 0x55;  // the block magic
  std::string path = TempPath("tail_corrupt");
  WriteBytes(path, bytes, bytes.size());
  TraceTail tail(path);
  absl::StatusOr<size_t> n = tail.Poll([](const std::vector<uint8_t>&) { return absl::OkStatus(); });
  EXPECT_TRUE(absl::IsDataLoss(n.status())) << n.status();
}

TEST(TraceTailTest, ReleaseConsumedPunchesOutWhatWasRead) {
  TestTraceWriter w(4242, 1, 64 << 10);
  for (uint64_t i = 0; i < 200000; ++i) w.Alloc(0, i, Api::kMalloc, 16 + i % 1000, i % 97);
  w.FlushAll();
  std::string path = TempPath("tail_punch");
  WriteBytes(path, w.bytes(), w.bytes().size());
  struct stat before;
  ASSERT_EQ(stat(path.c_str(), &before), 0);
  TraceTail tail(path, /*release_consumed=*/true);
  absl::StatusOr<size_t> n = tail.Poll([](const std::vector<uint8_t>&) { return absl::OkStatus(); });
  ASSERT_TRUE(n.ok()) << n.status();
  struct stat after;
  ASSERT_EQ(stat(path.c_str(), &after), 0);
  EXPECT_EQ(after.st_size, before.st_size);  // the writer's offset stays
  if (tail.released() == 0) GTEST_SKIP() << "this file system cannot punch holes";
  EXPECT_LT(after.st_blocks * 512, before.st_blocks * 512 / 4)
      << "before " << before.st_blocks << " blocks, after " << after.st_blocks;
}

}  // namespace
}  // namespace heapsight::analyzer
