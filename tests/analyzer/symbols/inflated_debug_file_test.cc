// tests/analyzer/symbols/inflated_debug_file_test.cc: InflateDebugFile (and
// InflateDebugImage, the same copy in memory) on
// real debug files: this test program's own DWARF, split off and
// compressed by objcopy (zlib, and zstd), must come back byte for byte,
// location lists left out, everything else where libdwfl expects it.
#include "analyzer/symbols/inflated_debug_file.h"

#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

struct Section {
  uint32_t type = 0;
  uint64_t flags = 0;
  std::string bytes;  // the section's data as libelf gives it (raw)
};

// Every named section of the ELF file open at `fd`, by name.
std::map<std::string, Section> SectionsOf(int fd, std::string* build_id = nullptr) {
  elf_version(EV_CURRENT);
  std::map<std::string, Section> out;
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  EXPECT_NE(elf, nullptr);
  if (elf == nullptr) return out;
  size_t shstrndx = 0;
  EXPECT_EQ(elf_getshdrstrndx(elf, &shstrndx), 0);
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr shdr;
    gelf_getshdr(scn, &shdr);
    Section s;
    s.type = shdr.sh_type;
    s.flags = shdr.sh_flags;
    if (shdr.sh_type != SHT_NOBITS) {
      Elf_Data* data = elf_rawdata(scn, nullptr);
      if (data != nullptr && data->d_buf != nullptr) {
        s.bytes.assign(static_cast<const char*>(data->d_buf), data->d_size);
      }
    }
    out[elf_strptr(elf, shstrndx, shdr.sh_name)] = std::move(s);
  }
  if (build_id != nullptr) {
    const void* id = nullptr;
    ssize_t n = dwelf_elf_gnu_build_id(elf, &id);
    build_id->assign(n > 0 ? static_cast<const char*>(id) : "", n > 0 ? n : 0);
  }
  elf_end(elf);
  return out;
}

class InflatedDebugFileTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/heapsight-inflate-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::system(absl::StrCat("rm -rf ", dir_).c_str()); }

  // This program's debug info, split off and compressed with `how`.
  std::string CompressedDebugFile(const std::string& how) {
    std::string out = absl::StrCat(dir_, "/self.", how, ".debug");
    std::string cmd = absl::StrCat("objcopy --only-keep-debug --compress-debug-sections=", how,
                                   " /proc/", getpid(), "/exe ", out, " 2>/dev/null");
    return std::system(cmd.c_str()) == 0 ? out : "";
  }

  std::string dir_;
};

TEST_P(InflatedDebugFileTest, EveryCompressedSectionComesBackByteForByte) {
  std::string debug = CompressedDebugFile(GetParam());
  if (debug.empty()) GTEST_SKIP() << "objcopy cannot compress with " << GetParam();
  int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  int compressed = open(debug.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(self, 0);
  ASSERT_GE(compressed, 0);
  std::string self_id, compressed_id, inflated_id;
  std::map<std::string, Section> original = SectionsOf(self, &self_id);
  std::map<std::string, Section> packed = SectionsOf(compressed, &compressed_id);

  InflatedDebugFileStats stats;
  absl::StatusOr<int> inflated = InflateDebugFile(compressed, &stats);
  ASSERT_TRUE(inflated.ok()) << inflated.status();
  std::map<std::string, Section> copy = SectionsOf(*inflated, &inflated_id);

  // What objcopy compressed, and what the copy must hold.
  uint64_t compressed_sections = 0, inflated_bytes = 0, dropped = 0;
  for (const auto& [name, s] : packed) {
    bool lists = name == ".debug_loc" || name == ".debug_loclists";
    if (lists) ++dropped;
    if ((s.flags & SHF_COMPRESSED) != 0 && !lists) {
      ++compressed_sections;
      inflated_bytes += original.at(name).bytes.size();
    }
  }
  ASSERT_GE(compressed_sections, 4u);  // info, abbrev, line, str at least
  EXPECT_EQ(stats.sections_inflated, compressed_sections);
  EXPECT_EQ(stats.bytes_inflated, inflated_bytes);
  EXPECT_EQ(stats.sections_dropped, dropped);
  EXPECT_EQ(dropped, 1u);  // gcc 12 -O2 -g: .debug_loclists

  ASSERT_EQ(copy.size(), packed.size());
  for (const auto& [name, s] : packed) {
    SCOPED_TRACE(name);
    const Section& c = copy.at(name);
    EXPECT_EQ(c.flags & SHF_COMPRESSED, 0u);
    if (name == ".debug_loc" || name == ".debug_loclists") {
      EXPECT_EQ(c.type, static_cast<uint32_t>(SHT_NOBITS));
    } else if ((s.flags & SHF_COMPRESSED) != 0) {
      EXPECT_EQ(c.type, s.type);
      EXPECT_TRUE(c.bytes == original.at(name).bytes);  // the uncompressed DWARF itself
    } else {
      EXPECT_EQ(c.type, s.type);
      EXPECT_TRUE(c.bytes == s.bytes);  // notes, symbol table, names: as they were
    }
  }
  EXPECT_FALSE(self_id.empty());
  EXPECT_EQ(compressed_id, self_id);
  EXPECT_EQ(inflated_id, self_id);  // the note stays where the program headers say
  close(*inflated);
  close(compressed);
  close(self);
}

// The whole content of the file open at `fd`.
std::string ContentOf(int fd) {
  std::string out;
  char buf[1 << 16];
  off_t at = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf, at);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    at += n;
  }
  return out;
}

// ScopedSerialInflation (a helper inflating beside the pass) changes where
// the sections are inflated, not what is written: the same file, byte for
// byte, as with the second thread.
TEST_P(InflatedDebugFileTest, SerialInflationWritesTheSameFile) {
  std::string debug = CompressedDebugFile(GetParam());
  if (debug.empty()) GTEST_SKIP() << "objcopy cannot compress with " << GetParam();
  int compressed = open(debug.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(compressed, 0);
  absl::StatusOr<int> parallel = InflateDebugFile(compressed);
  ASSERT_TRUE(parallel.ok()) << parallel.status();
  absl::StatusOr<int> serial = absl::InternalError("not run");
  {
    ScopedSerialInflation outer;
    {
      ScopedSerialInflation inner;  // nested scopes restore what they found
    }
    serial = InflateDebugFile(compressed);
  }
  ASSERT_TRUE(serial.ok()) << serial.status();
  std::string a = ContentOf(*parallel), b = ContentOf(*serial);
  EXPECT_GT(a.size(), 0u);
  EXPECT_TRUE(a == b);
  close(*parallel);
  close(*serial);
  close(compressed);
}

// InflateDebugImage writes the memfd's copy into memory: the same bytes,
// in a huge-page-aligned mapping, which libelf reads as a file (elf_memory)
// with the same sections.
TEST_P(InflatedDebugFileTest, TheImageInMemoryIsTheMemfdsCopy) {
  std::string debug = CompressedDebugFile(GetParam());
  if (debug.empty()) GTEST_SKIP() << "objcopy cannot compress with " << GetParam();
  int compressed = open(debug.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(compressed, 0);
  InflatedDebugFileStats file_stats, image_stats;
  absl::StatusOr<int> file = InflateDebugFile(compressed, &file_stats);
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<InflatedDebugImage> image = InflateDebugImage(compressed, &image_stats);
  ASSERT_TRUE(image.ok()) << image.status();
  std::string a = ContentOf(*file);
  ASSERT_EQ(image->size(), a.size());
  EXPECT_TRUE(std::string(reinterpret_cast<const char*>(image->data()), image->size()) == a);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(image->data()) % (uintptr_t{2} << 20), 0u);
  EXPECT_EQ(image_stats.sections_inflated, file_stats.sections_inflated);
  EXPECT_EQ(image_stats.bytes_inflated, file_stats.bytes_inflated);
  EXPECT_EQ(image_stats.sections_dropped, file_stats.sections_dropped);

  // libelf over the memory: every section the memfd's copy has, alike.
  std::map<std::string, Section> from_file = SectionsOf(*file);
  Elf* elf = elf_memory(reinterpret_cast<char*>(image->data()), image->size());
  ASSERT_NE(elf, nullptr);
  size_t shstrndx = 0;
  ASSERT_EQ(elf_getshdrstrndx(elf, &shstrndx), 0);
  size_t sections = 0;
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr shdr;
    gelf_getshdr(scn, &shdr);
    const char* name = elf_strptr(elf, shstrndx, shdr.sh_name);
    SCOPED_TRACE(name);
    const Section& f = from_file.at(name);
    EXPECT_EQ(shdr.sh_type, f.type);
    if (shdr.sh_type != SHT_NOBITS) {
      Elf_Data* data = elf_rawdata(scn, nullptr);
      ASSERT_NE(data, nullptr);
      EXPECT_TRUE(std::string(static_cast<const char*>(data->d_buf), data->d_size) == f.bytes);
    }
    ++sections;
  }
  EXPECT_EQ(sections, from_file.size());
  elf_end(elf);  // leaves the image mapped: it is the caller's memory

  // Moving the image moves the mapping; the moved-from one holds nothing.
  InflatedDebugImage moved = std::move(*image);
  EXPECT_EQ(image->data(), nullptr);
  EXPECT_EQ(image->size(), 0u);
  EXPECT_EQ(moved.size(), a.size());
  EXPECT_EQ(std::memcmp(moved.data(), a.data(), 64), 0);
  close(*file);
  close(compressed);
}

INSTANTIATE_TEST_SUITE_P(ZlibAndZstd, InflatedDebugFileTest, ::testing::Values("zlib", "zstd"));

TEST(InflatedDebugFileErrorsTest, NothingCompressedGarbageAndACorruptStreamAreErrors) {
  // This program's own file: DWARF, but nothing compressed.
  int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(self, 0);
  EXPECT_EQ(InflateDebugFile(self).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(InflateDebugImage(self).status().code(), absl::StatusCode::kNotFound);
  close(self);

  char path[] = "/tmp/heapsight-inflate-bad-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string garbage(4096, 'x');
  ASSERT_EQ(write(fd, garbage.data(), garbage.size()), 4096);
  EXPECT_FALSE(InflateDebugFile(fd).ok());
  EXPECT_FALSE(InflateDebugImage(fd).ok());
  close(fd);

  // A zlib-compressed debug file whose .debug_info stream is cut short:
  // an error, not a crash, and not a copy with half a section.
  std::string out = absl::StrCat(path, ".debug");
  std::string cmd = absl::StrCat("objcopy --only-keep-debug --compress-debug-sections=zlib /proc/",
                                 getpid(), "/exe ", out);
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  int dbg = open(out.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(dbg, 0);
  elf_version(EV_CURRENT);
  Elf* elf = elf_begin(dbg, ELF_C_READ_MMAP, nullptr);
  ASSERT_NE(elf, nullptr);
  size_t shstrndx = 0;
  elf_getshdrstrndx(elf, &shstrndx);
  GElf_Shdr info{};
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr shdr;
    gelf_getshdr(scn, &shdr);
    if (std::strcmp(elf_strptr(elf, shstrndx, shdr.sh_name), ".debug_info") == 0) info = shdr;
  }
  elf_end(elf);
  ASSERT_NE(info.sh_flags & SHF_COMPRESSED, 0u);
  std::string zeros(info.sh_size / 2, '\0');  // the stream's second half zeroed
  ASSERT_EQ(pwrite(dbg, zeros.data(), zeros.size(),
                   static_cast<off_t>(info.sh_offset + info.sh_size - zeros.size())),
            static_cast<ssize_t>(zeros.size()));
  absl::StatusOr<int> broken = InflateDebugFile(dbg);
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kDataLoss) << broken.status();
  EXPECT_EQ(InflateDebugImage(dbg).status().code(), absl::StatusCode::kDataLoss);
  close(dbg);
  unlink(out.c_str());
  unlink(path);
}

}  // namespace
}  // namespace heapsight::analyzer
