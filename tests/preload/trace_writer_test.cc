// tests/preload/trace_writer_test.cc: the trace file (preload/trace_writer.h):
// output pattern expansion, file creation (never over an existing file or
// through a symlink, mode 0600, .1/.2 suffixes), the manifest line, and
// blocks as written on disk (raw and zstd).
#include "preload/trace_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cstring>
#include <string>
#include <vector>

#include "format/chunk_encoder.h"
#include "format/trace_format.h"
#include "tests/support/run_traced.h"

namespace heapsight::preload {
namespace {

std::string Expand(const char* pattern, const char* start_dir, const char* exe, uint64_t pid,
                   size_t out_size = 4096) {
  std::vector<char> out(out_size, 'X');
  if (!ExpandOutputPattern(pattern, start_dir, exe, pid, out.data(), out.size())) return "<false>";
  return out.data();
}

TEST(TraceWriter, ExpandsThePattern) {
  EXPECT_EQ(Expand("t.%e.%p.hst", "/home/u", "/usr/bin/prog", 42), "/home/u/t.prog.42.hst");
  EXPECT_EQ(Expand("/abs/%p-%p", "/ignored", "/x", 7), "/abs/7-7");
  EXPECT_EQ(Expand("%e", "/", "prog-without-dir", 1), "/prog-without-dir");  // no "//"
  EXPECT_EQ(Expand("%e.hst", "/d/", "", 1), "/d/unknown.hst");
  EXPECT_EQ(Expand("100%%-%x-%", "/d", "/p", 1), "/d/100%-%x-%");  // only %p %e %% expand
  EXPECT_EQ(Expand("%p", "/d", "/p", 18446744073709551615u), "/d/18446744073709551615");
  EXPECT_EQ(Expand("%p", "/d", "/p", 0), "/d/0");
}

TEST(TraceWriter, ExpansionThatDoesNotFitIsRefused) {
  // "/d/" + "abcdef" = 9 characters.
  EXPECT_EQ(Expand("abcdef", "/d", "/p", 1, 11), "/d/abcdef");
  // With 10 bytes (9 characters and the NUL) it would just fit, but the
  // writer cannot tell a full buffer from a cut one: refused.
  EXPECT_EQ(Expand("abcdef", "/d", "/p", 1, 10), "<false>");
  EXPECT_EQ(Expand("abcdef", "/d", "/p", 1, 5), "<false>");
  EXPECT_EQ(Expand("%p", "/d", "/p", 123456789, 8), "<false>");
}

format::FileHeader Header(uint32_t pid) {
  format::FileHeader h{};
  std::memcpy(h.magic, format::kFileMagic, sizeof h.magic);
  h.version = format::kFormatVersion;
  h.header_size = sizeof h;
  h.pid = pid;
  return h;
}

bool SameBytes(const std::string& bytes, size_t at, const void* p, size_t n) {
  return bytes.size() >= at + n && std::memcmp(bytes.data() + at, p, n) == 0;
}

TEST(TraceWriter, CreatesNewFilesOnlyWithMode0600) {
  std::string dir = testing::MakeTempDir();
  format::FileHeader h = Header(4242);
  ASSERT_EQ(OpenTrace((dir + "/t.hst").c_str(), h), 0);
  EXPECT_EQ(std::string(TracePath()), dir + "/t.hst");
  struct stat st;
  ASSERT_EQ(stat(TracePath(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  std::string bytes = testing::ReadFile(dir + "/t.hst");
  EXPECT_EQ(bytes.size(), sizeof h);
  EXPECT_TRUE(SameBytes(bytes, 0, &h, sizeof h));
  // The name is taken: .1 goes before ".hst", then .2.
  ASSERT_EQ(OpenTrace((dir + "/t.hst").c_str(), h), 0);
  EXPECT_EQ(std::string(TracePath()), dir + "/t.1.hst");
  ASSERT_EQ(OpenTrace((dir + "/t.hst").c_str(), h), 0);
  EXPECT_EQ(std::string(TracePath()), dir + "/t.2.hst");
  EXPECT_EQ(testing::ReadFile(dir + "/t.hst"), bytes);  // the first file untouched
  // Without the extension the number goes at the end.
  ASSERT_EQ(OpenTrace((dir + "/plain").c_str(), h), 0);
  ASSERT_EQ(OpenTrace((dir + "/plain").c_str(), h), 0);
  EXPECT_EQ(std::string(TracePath()), dir + "/plain.1");
}

TEST(TraceWriter, NeverFollowsASymlink) {
  std::string dir = testing::MakeTempDir();
  ASSERT_EQ(symlink((dir + "/victim").c_str(), (dir + "/s.hst").c_str()), 0);
  ASSERT_EQ(OpenTrace((dir + "/s.hst").c_str(), Header(1)), 0);
  EXPECT_EQ(std::string(TracePath()), dir + "/s.1.hst");
  struct stat st;
  EXPECT_NE(lstat((dir + "/victim").c_str(), &st), 0);  // nothing created through the link
  ASSERT_EQ(lstat((dir + "/s.hst").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

TEST(TraceWriter, ErrorsAreErrnoValues) {
  EXPECT_EQ(OpenTrace("/nonexistent-dir/x.hst", Header(1)), ENOENT);
  std::string long_path = "/" + std::string(10000, 'a') + ".hst";
  EXPECT_EQ(OpenTrace(long_path.c_str(), Header(1)), ENAMETOOLONG);
}

TEST(TraceWriter, ManifestGetsOneEntryPerCall) {
  // `heapsight record` creates the manifest in a private (0700) directory;
  // the preload only appends to that file, each path ending in a NUL byte
  // (paths may hold newlines), and never creates it.
  std::string dir = testing::MakeTempDir();
  ASSERT_EQ(chmod(dir.c_str(), 0700), 0);
  ASSERT_EQ(OpenTrace((dir + "/m.hst").c_str(), Header(1)), 0);
  std::string manifest = dir + "/manifest";
  std::string missing = dir + "/not-created";
  int fd = open(manifest.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  close(fd);
  AppendToManifest(manifest.c_str());
  AppendToManifest(manifest.c_str());
  AppendToManifest(missing.c_str());  // absent: not created
  AppendToManifest("");  // no manifest: nothing
  AppendToManifest(nullptr);
  std::string entry = dir + "/m.hst";
  entry.push_back('\0');
  EXPECT_EQ(testing::ReadFile(manifest), entry + entry);
  struct stat st;
  EXPECT_NE(lstat(missing.c_str(), &st), 0);
}

TEST(TraceWriter, ManifestInASharedDirectoryIsRefused) {
  std::string dir = testing::MakeTempDir();
  ASSERT_EQ(chmod(dir.c_str(), 0755), 0);
  ASSERT_EQ(OpenTrace((dir + "/m.hst").c_str(), Header(1)), 0);
  std::string manifest = dir + "/manifest";
  int fd = open(manifest.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_GE(fd, 0);
  close(fd);
  AppendToManifest(manifest.c_str());
  EXPECT_EQ(testing::ReadFile(manifest), "");
}

// A real chunk of `allocs` allocations, with kBlockHeaderRoom bytes before it.
struct Chunk {
  std::vector<uint8_t> buf;
  size_t raw = 0;
  uint8_t* data() { return buf.data() + kBlockHeaderRoom; }
};

Chunk MakeChunk(int allocs) {
  Chunk c;
  c.buf.resize(kBlockHeaderRoom + (1 << 16));
  format::ChunkEncoder enc;
  enc.Begin(c.data(), c.buf.size() - kBlockHeaderRoom, format::ChunkHeader{3, 1234, 7, 1000, 50});
  for (int i = 0; i < allocs; ++i) {
    EXPECT_TRUE(enc.PutAlloc(1000 + static_cast<uint64_t>(i), format::Api::kMalloc, 64, 1, 0,
                             0x10000 + static_cast<uint64_t>(i) * 64));
  }
  c.raw = enc.Seal();
  return c;
}

TEST(TraceWriter, BlocksOnDiskRawAndCompressed) {
  std::string dir = testing::MakeTempDir();
  format::FileHeader h = Header(7);
  ASSERT_EQ(OpenTrace((dir + "/b.hst").c_str(), h), 0);
  Chunk big = MakeChunk(1000);
  Chunk tiny = MakeChunk(1);
  ASSERT_GT(big.raw, 256u);
  ASSERT_LE(tiny.raw, 256u);
  const std::string big_bytes(reinterpret_cast<const char*>(big.data()), big.raw);
  const std::string tiny_bytes(reinterpret_cast<const char*>(tiny.data()), tiny.raw);
  std::vector<uint8_t> scratch(kBlockHeaderRoom + CompressBound(big.raw));
  int hint = 0;
  ASSERT_EQ(WriteChunk(big.data(), big.raw, 0, scratch.data(), &hint), 0);   // level 0: raw
  ASSERT_EQ(WriteChunk(big.data(), big.raw, 3, scratch.data(), &hint), 0);   // zstd
  ASSERT_EQ(WriteChunk(tiny.data(), tiny.raw, 3, scratch.data(), &hint), 0);  // too small: raw

  std::string file = testing::ReadFile(dir + "/b.hst");
  size_t at = sizeof h;
  auto next_block = [&](format::Codec codec, const std::string& chunk) {
    format::BlockHeader b;
    ASSERT_GE(file.size(), at + sizeof b);
    std::memcpy(&b, file.data() + at, sizeof b);
    at += sizeof b;
    EXPECT_EQ(b.magic, format::kBlockMagic);
    EXPECT_EQ(b.codec, static_cast<uint8_t>(codec));
    EXPECT_EQ(b.raw_size, chunk.size());
    EXPECT_EQ(std::memcmp(&b.chunk, chunk.data(), sizeof b.chunk), 0);  // the chunk's header
    ASSERT_GE(file.size(), at + b.payload_size);
    std::string payload = file.substr(at, b.payload_size);
    at += b.payload_size;
    if (codec == format::Codec::kRaw) {
      EXPECT_EQ(payload, chunk);
    } else {
      EXPECT_LT(payload.size(), chunk.size());
      std::string decoded(chunk.size(), '\0');
      size_t n = ZSTD_decompress(decoded.data(), decoded.size(), payload.data(), payload.size());
      ASSERT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
      EXPECT_EQ(n, chunk.size());
      EXPECT_EQ(decoded, chunk);
    }
  };
  next_block(format::Codec::kRaw, big_bytes);
  next_block(format::Codec::kZstd, big_bytes);
  next_block(format::Codec::kRaw, tiny_bytes);
  EXPECT_EQ(at, file.size());  // nothing else
}

}  // namespace
}  // namespace heapsight::preload
