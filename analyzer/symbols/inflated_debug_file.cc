// analyzer/symbols/inflated_debug_file.cc: see inflated_debug_file.h.
#include "analyzer/symbols/inflated_debug_file.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#ifdef HEAPSIGHT_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

#ifndef ELFCOMPRESS_ZSTD
#define ELFCOMPRESS_ZSTD 2
#endif

namespace heapsight::analyzer {
namespace {

// Larger than any real debug file's DWARF; a header claiming more is garbage.
constexpr uint64_t kMaxInflatedBytes = uint64_t{4} << 30;
// Below this, a second thread costs more than it saves.
constexpr uint64_t kParallelMinBytes = uint64_t{1} << 20;
// Set by ScopedSerialInflation.
thread_local bool t_serial_inflation = false;

// A read-only or shared mapping, unmapped when it goes.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* data, size_t size) : data_(data), size_(size) {}
  ~Mapping() {
    if (data_ != nullptr) munmap(data_, size_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  Mapping& operator=(Mapping&& other) noexcept {
    if (this != &other) {
      if (data_ != nullptr) munmap(data_, size_);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  uint8_t* bytes() const { return static_cast<uint8_t*>(data_); }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

// An owned descriptor, closed unless released.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) close(fd_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

bool IsLocationLists(std::string_view name) {
  return name == ".debug_loc" || name == ".debug_loclists";
}

// `in` (a zlib stream: 2-byte header, deflate data, adler32) into exactly
// `out_size` bytes at `out`.
bool InflateZlib(const uint8_t* in, size_t in_size, uint8_t* out, size_t out_size) {
#ifdef HEAPSIGHT_HAVE_LIBDEFLATE
  // One decompressor per call (~32 KiB, a few microseconds: sections are
  // megabytes), so that two threads can inflate at once.
  std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor*)> decompressor(
      libdeflate_alloc_decompressor(), libdeflate_free_decompressor);
  if (decompressor == nullptr) return false;
  size_t actual = 0;
  return libdeflate_zlib_decompress(decompressor.get(), in, in_size, out, out_size, &actual) ==
             LIBDEFLATE_SUCCESS &&
         actual == out_size;
#else
  // The 2-byte header checked here, then raw deflate: zlib's own wrapper
  // would also sum the whole output (adler32, 18% of zlib's time on libc).
  if (in_size < 6 || (in[0] & 0x0f) != Z_DEFLATED || ((in[0] << 8) | in[1]) % 31 != 0 ||
      (in[1] & 0x20) != 0) {
    return false;
  }
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return false;
  z.next_in = const_cast<uint8_t*>(in + 2);
  z.avail_in = static_cast<uInt>(in_size - 2);
  z.next_out = out;
  z.avail_out = static_cast<uInt>(out_size);
  int rc = inflate(&z, Z_FINISH);
  bool ok = rc == Z_STREAM_END && z.total_out == out_size;
  inflateEnd(&z);
  return ok;
#endif
}

bool InflateSection(uint32_t type, const uint8_t* in, size_t in_size, uint8_t* out,
                    size_t out_size) {
  if (type == ELFCOMPRESS_ZLIB) {
    if (in_size > UINT32_MAX || out_size > UINT32_MAX) return false;
    return InflateZlib(in, in_size, out, out_size);
  }
  if (type == ELFCOMPRESS_ZSTD) {
    size_t n = ZSTD_decompress(out, out_size, in, in_size);
    return !ZSTD_isError(n) && n == out_size;
  }
  return false;
}

uint64_t AlignUp(uint64_t v, uint64_t align) {
  if (align <= 1) return v;
  return (v + align - 1) / align * align;
}

// What the sections are inflated into: Open sizes it (`total` bytes) and
// Write maps [offset, offset + size) (size >= 1) writable, the mapping held
// by *mapping until it goes.
class InflateTarget {
 public:
  virtual ~InflateTarget() = default;
  virtual absl::Status Open(uint64_t total) = 0;
  virtual uint8_t* Write(uint64_t offset, uint64_t size, Mapping* mapping) = 0;
};

// The copy laid out and inflated into `target` (see InflateDebugFile).
absl::Status InflateInto(int fd, InflateTarget& target, InflatedDebugFileStats* stats) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError("not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < sizeof(Elf64_Ehdr)) return absl::InvalidArgumentError("too small for ELF");
  void* in_map = mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (in_map == MAP_FAILED) return absl::InternalError("cannot map the file");
  Mapping in(in_map, file_size);
  const uint8_t* file = in.bytes();

  Elf64_Ehdr ehdr;
  std::memcpy(&ehdr, file, sizeof(ehdr));
  if (std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0 || ehdr.e_ident[EI_CLASS] != ELFCLASS64 ||
      ehdr.e_ident[EI_DATA] != ELFDATA2LSB || ehdr.e_shentsize != sizeof(Elf64_Shdr) ||
      ehdr.e_shnum == 0 || ehdr.e_shstrndx >= ehdr.e_shnum ||
      ehdr.e_shoff > file_size ||
      uint64_t{ehdr.e_shnum} * sizeof(Elf64_Shdr) > file_size - ehdr.e_shoff) {
    // e_shnum == 0 also covers extended section numbering: left to libelf.
    return absl::InvalidArgumentError("not a 64-bit little-endian ELF file with sections");
  }
  std::vector<Elf64_Shdr> shdrs(ehdr.e_shnum);
  std::memcpy(shdrs.data(), file + ehdr.e_shoff, shdrs.size() * sizeof(Elf64_Shdr));
  auto in_file = [&](const Elf64_Shdr& s) {
    return s.sh_type == SHT_NOBITS ||
           (s.sh_offset <= file_size && s.sh_size <= file_size - s.sh_offset);
  };
  const Elf64_Shdr& names = shdrs[ehdr.e_shstrndx];
  if (names.sh_type == SHT_NOBITS || !in_file(names)) {
    return absl::InvalidArgumentError("section names out of bounds");
  }
  auto name_of = [&](const Elf64_Shdr& s) -> std::string_view {
    if (s.sh_name >= names.sh_size) return {};
    const char* p = reinterpret_cast<const char*>(file + names.sh_offset + s.sh_name);
    return std::string_view(p, strnlen(p, names.sh_size - s.sh_name));
  };

  // What becomes of each section, and its size in the copy.
  enum class Action : uint8_t { kKeep, kInflate, kDrop };
  std::vector<Action> action(shdrs.size(), Action::kKeep);
  std::vector<Elf64_Chdr> chdr(shdrs.size());
  uint64_t first_changed = UINT64_MAX;
  uint64_t inflated_total = 0;
  for (size_t i = 1; i < shdrs.size(); ++i) {
    const Elf64_Shdr& s = shdrs[i];
    if (s.sh_type == SHT_NOBITS) continue;
    if (!in_file(s)) return absl::InvalidArgumentError("a section out of bounds");
    if (IsLocationLists(name_of(s))) {
      action[i] = Action::kDrop;
    } else if ((s.sh_flags & SHF_COMPRESSED) != 0) {
      if (s.sh_size < sizeof(Elf64_Chdr)) return absl::InvalidArgumentError("short Chdr");
      std::memcpy(&chdr[i], file + s.sh_offset, sizeof(Elf64_Chdr));
      if (chdr[i].ch_type != ELFCOMPRESS_ZLIB && chdr[i].ch_type != ELFCOMPRESS_ZSTD) {
        return absl::UnimplementedError("a section compressed other than with zlib or zstd");
      }
      if (chdr[i].ch_size > kMaxInflatedBytes - inflated_total) {
        return absl::InvalidArgumentError("inflated size too large");
      }
      inflated_total += chdr[i].ch_size;
      action[i] = Action::kInflate;
    } else {
      continue;
    }
    first_changed = std::min<uint64_t>(first_changed, s.sh_offset);
  }
  if (inflated_total == 0) return absl::NotFoundError("no compressed section");

  // Everything before the first changed section stays where it is: the
  // program headers' offsets (notes: the build id) stay true. That part
  // must not reach into the sections laid out anew.
  if (ehdr.e_phnum != 0 &&
      (ehdr.e_phentsize != sizeof(Elf64_Phdr) || ehdr.e_phoff > first_changed ||
       uint64_t{ehdr.e_phnum} * sizeof(Elf64_Phdr) > first_changed - ehdr.e_phoff)) {
    return absl::InvalidArgumentError("program headers after the debug sections");
  }
  for (size_t i = 0; i < ehdr.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, file + ehdr.e_phoff + i * sizeof(Elf64_Phdr), sizeof(ph));
    if (ph.p_filesz != 0 && (ph.p_offset > first_changed ||
                             ph.p_filesz > first_changed - ph.p_offset)) {
      return absl::InvalidArgumentError("a segment's contents after the debug sections");
    }
  }
  std::vector<size_t> moved;  // sections with contents at or after first_changed
  for (size_t i = 1; i < shdrs.size(); ++i) {
    const Elf64_Shdr& s = shdrs[i];
    if (s.sh_type == SHT_NOBITS) continue;
    if (s.sh_offset >= first_changed) {
      moved.push_back(i);
    } else if (s.sh_size > first_changed - s.sh_offset) {
      return absl::InvalidArgumentError("a section overlaps the debug sections");
    }
  }
  std::sort(moved.begin(), moved.end(),
            [&](size_t a, size_t b) { return shdrs[a].sh_offset < shdrs[b].sh_offset; });

  std::vector<Elf64_Shdr> out_shdrs = shdrs;
  uint64_t end = first_changed;
  for (size_t i : moved) {
    Elf64_Shdr& s = out_shdrs[i];
    switch (action[i]) {
      case Action::kKeep:
        s.sh_offset = AlignUp(end, s.sh_addralign);
        end = s.sh_offset + s.sh_size;
        break;
      case Action::kInflate:
        s.sh_flags &= ~uint64_t{SHF_COMPRESSED};
        s.sh_addralign = std::max<uint64_t>(chdr[i].ch_addralign, 1);
        if (s.sh_addralign > 4096) return absl::InvalidArgumentError("odd alignment");
        s.sh_offset = AlignUp(end, s.sh_addralign);
        s.sh_size = chdr[i].ch_size;
        end = s.sh_offset + s.sh_size;
        break;
      case Action::kDrop:
        // libdw skips a debug section of type SHT_NOBITS.
        s.sh_type = SHT_NOBITS;
        s.sh_flags &= ~uint64_t{SHF_COMPRESSED};
        s.sh_offset = end;
        s.sh_size = 0;
        break;
    }
    if (s.sh_addralign > 4096 && action[i] == Action::kKeep) {
      return absl::InvalidArgumentError("odd alignment");
    }
  }
  const uint64_t shoff = AlignUp(end, 8);
  const uint64_t total = shoff + shdrs.size() * sizeof(Elf64_Shdr);

  absl::Status opened = target.Open(total);
  if (!opened.ok()) return opened;
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  auto write_all = [&](const void* data, uint64_t size, uint64_t offset) {
    if (size == 0) return true;
    Mapping mapping;
    uint8_t* to = target.Write(offset, size, &mapping);
    if (to == nullptr) return false;
    std::memcpy(to, data, size);
    return true;
  };
  // The compressed input's pages dropped once read.
  auto drop_input = [&](uint64_t offset, uint64_t size) {
    uint64_t begin = offset / page * page;
    madvise(const_cast<uint8_t*>(file) + begin, offset + size - begin, MADV_DONTNEED);
  };

  if (!write_all(file, first_changed, 0)) return absl::InternalError("cannot write the copy");
  // Inflates section i into the copy; "" or what went wrong.
  auto inflate_one = [&](size_t i) -> std::string {
    const Elf64_Shdr& from = shdrs[i];
    const Elf64_Shdr& to = out_shdrs[i];
    Mapping mapping;
    uint8_t empty = 0;  // an empty section's target: nothing to map
    uint8_t* out = to.sh_size == 0 ? &empty : target.Write(to.sh_offset, to.sh_size, &mapping);
    if (out == nullptr) return "cannot map the copy";
    if (!InflateSection(chdr[i].ch_type, file + from.sh_offset + sizeof(Elf64_Chdr),
                        from.sh_size - sizeof(Elf64_Chdr), out, to.sh_size)) {
      return absl::StrCat("section ", std::string(name_of(from)), " does not inflate");
    }
    drop_input(from.sh_offset, from.sh_size);
    return "";
  };
  InflatedDebugFileStats counted;
  std::vector<size_t> to_inflate;
  for (size_t i : moved) {
    const Elf64_Shdr& from = shdrs[i];
    const Elf64_Shdr& to = out_shdrs[i];
    if (action[i] == Action::kKeep) {
      if (!write_all(file + from.sh_offset, from.sh_size, to.sh_offset)) {
        return absl::InternalError("cannot write the copy");
      }
      drop_input(from.sh_offset, from.sh_size);
    } else if (action[i] == Action::kInflate) {
      to_inflate.push_back(i);
      ++counted.sections_inflated;
      counted.bytes_inflated += to.sh_size;
    } else {
      ++counted.sections_dropped;
    }
  }
  // The largest section (libc's .debug_info: 5.8 of 8.6 MB) on a thread of
  // its own while this one inflates the rest: the report that asked waits
  // for the larger part only.
  std::sort(to_inflate.begin(), to_inflate.end(),
            [&](size_t a, size_t b) { return out_shdrs[a].sh_size > out_shdrs[b].sh_size; });
  std::string largest_error;
  std::thread largest;
  size_t first = 0;
  if (to_inflate.size() >= 2 && inflated_total >= kParallelMinBytes && !t_serial_inflation) {
    largest = std::thread([&, i = to_inflate[0]] { largest_error = inflate_one(i); });
    first = 1;
  }
  std::string error;
  for (size_t k = first; k < to_inflate.size() && error.empty(); ++k) {
    error = inflate_one(to_inflate[k]);
  }
  if (largest.joinable()) largest.join();
  if (error.empty()) error = largest_error;
  if (!error.empty()) return absl::DataLossError(error);
  Elf64_Ehdr out_ehdr = ehdr;
  out_ehdr.e_shoff = shoff;
  if (!write_all(&out_ehdr, sizeof(out_ehdr), 0) ||
      !write_all(out_shdrs.data(), out_shdrs.size() * sizeof(Elf64_Shdr), shoff)) {
    return absl::InternalError("cannot write the copy");
  }
  if (stats != nullptr) *stats = counted;
  return absl::OkStatus();
}

// A memfd, sized by fallocate and written through a shared mapping per
// section.
class MemfdTarget : public InflateTarget {
 public:
  MemfdTarget() : fd_(memfd_create("heapsight-debuginfo", MFD_CLOEXEC)) {}

  absl::Status Open(uint64_t total) override {
    if (fd_.get() < 0) return absl::InternalError("memfd_create failed");
    // Allocated up front (fallocate, not ftruncate): the sections are
    // written through a mapping, where a page the kernel could not allocate
    // would be a SIGBUS instead of write's error.
    if (fallocate(fd_.get(), 0, 0, static_cast<off_t>(total)) != 0) {
      return absl::ResourceExhaustedError("cannot size the memfd");
    }
    return absl::OkStatus();
  }

  // Each section is written straight into the memfd through a shared
  // mapping of its pages, mapped one section at a time and unmapped after
  // it: the memfd's pages count in this process's RSS only while their
  // section is being written, and later where libdw maps and touches them.
  // (Before 2026-12-06 a section was inflated into a heap buffer and copied
  // in with pwrite: node's report paid 2,100 page faults for the buffers,
  // the copy and their unmapping, about 6% of its CPU time.)
  uint8_t* Write(uint64_t offset, uint64_t size, Mapping* mapping) override {
    const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    uint64_t begin = offset / page * page;
    uint64_t length = offset + size - begin;
    // MAP_POPULATE: the pages (allocated by fallocate) mapped in one call
    // instead of a fault each as the inflater reaches them.
    void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_.get(),
                   static_cast<off_t>(begin));
    if (p == MAP_FAILED) return nullptr;
    *mapping = Mapping(p, length);
    return static_cast<uint8_t*>(p) + (offset - begin);
  }

  int release() { return fd_.release(); }

 private:
  Descriptor fd_;
};

// One private anonymous mapping, advised MADV_HUGEPAGE where it spans whole
// huge pages.
class ImageTarget : public InflateTarget {
 public:
  absl::Status Open(uint64_t total) override {
    // Room to start at a huge-page boundary: the kernel gives a huge page
    // only to a 2 MiB-aligned range of the mapping.
    const size_t length = static_cast<size_t>(total) + kHugePage;
    void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return absl::ResourceExhaustedError("cannot map the copy");
    uintptr_t start = reinterpret_cast<uintptr_t>(p);
    uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
    // The slack before and after given back.
    if (aligned > start) munmap(p, aligned - start);
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    uintptr_t end = (aligned + total + page - 1) / page * page;
    if (start + length > end) munmap(reinterpret_cast<void*>(end), start + length - end);
    image_ = InflatedDebugImage(reinterpret_cast<uint8_t*>(aligned), static_cast<size_t>(total),
                                end - aligned);
    if (total >= kHugePage) madvise(image_.data(), total / kHugePage * kHugePage, MADV_HUGEPAGE);
    return absl::OkStatus();
  }

  uint8_t* Write(uint64_t offset, uint64_t, Mapping*) override { return image_.data() + offset; }

  InflatedDebugImage release() { return std::move(image_); }

 private:
  static constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
  InflatedDebugImage image_;
};

}  // namespace

InflatedDebugImage::~InflatedDebugImage() {
  if (data_ != nullptr) munmap(data_, mapped_);
}

InflatedDebugImage& InflatedDebugImage::operator=(InflatedDebugImage&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) munmap(data_, mapped_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

ScopedSerialInflation::ScopedSerialInflation() : previous_(t_serial_inflation) {
  t_serial_inflation = true;
}

ScopedSerialInflation::~ScopedSerialInflation() { t_serial_inflation = previous_; }

bool InflatesWithLibdeflate() {
#ifdef HEAPSIGHT_HAVE_LIBDEFLATE
  return true;
#else
  return false;
#endif
}

absl::StatusOr<int> InflateDebugFile(int fd, InflatedDebugFileStats* stats) {
  MemfdTarget target;
  absl::Status status = InflateInto(fd, target, stats);
  if (!status.ok()) return status;
  return target.release();
}

absl::StatusOr<InflatedDebugImage> InflateDebugImage(int fd, InflatedDebugFileStats* stats) {
  ImageTarget target;
  absl::Status status = InflateInto(fd, target, stats);
  if (!status.ok()) return status;
  return target.release();
}

}  // namespace heapsight::analyzer
