// analyzer/cache/analysis_cache.cc: see analysis_cache.h.
//
// File layout: "HSACACHE" (8 bytes), a little-endian u32 file version, then
// one zstd frame (content size and checksum included) of
//   heapsight version, schema tag, options key, trace fingerprint,
//   module fingerprints (count, then path and state each), the profile.
#include "analyzer/cache/analysis_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analyzer/cache/byte_codec.h"
#include "analyzer/cache/profile_codec.h"
#include "analyzer/model/fork_inheritance.h"
#include "analyzer/symbols/module.h"
#include "format/trace_format.h"

#ifndef HEAPSIGHT_VERSION
#define HEAPSIGHT_VERSION "unknown"
#endif

namespace heapsight::analyzer::cache {
namespace {

constexpr char kMagic[8] = {'H', 'S', 'A', 'C', 'A', 'C', 'H', 'E'};
constexpr uint32_t kFileVersion = 1;
constexpr size_t kPrefixSize = sizeof kMagic + 4;
// A cache file larger than this, or one that claims to decompress to more
// than this, is not read (a forged size must not size an allocation).
constexpr uint64_t kMaxCacheFile = uint64_t{1} << 31;
constexpr uint64_t kMaxPayload = uint64_t{1} << 33;
constexpr uint64_t kMaxExpansion = 1000;  // zstd's best case is about 1:1000 here
constexpr uint64_t kHeadBytes = 4096;
constexpr uint64_t kTailBytes = 65536;

// FNV-1a, 64 bits: stable across builds and processes (a change detector,
// not a defence: the trace's size, mtime and inode are checked too).
uint64_t Fnv1a(std::string_view data, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t MtimeNs(const struct stat& st) {
  return static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull +
         static_cast<uint64_t>(st.st_mtim.tv_nsec);
}

bool ReadAt(int fd, uint64_t offset, size_t n, std::string* out) {
  out->resize(n);
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, out->data() + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<size_t>(r);
  }
  return true;
}

std::string TraceFingerprint(const std::string& path, int depth);

// A version-6 fork child's analysis depends on its parent's trace too
// (fork_inheritance.h): the parent's fingerprint, or that none was found;
// "" for every other trace (`head`: the trace's first bytes).
std::string ParentFingerprint(const std::string& path, const std::string& head, int depth) {
  format::FileHeader h;
  if (head.size() < sizeof h) return "";
  std::memcpy(&h, head.data(), sizeof h);
  if (std::memcmp(h.magic, format::kFileMagic, sizeof h.magic) != 0 ||
      (h.flags & format::kFileFlagAddressFrees) == 0 ||
      (h.flags & format::kFileFlagForkChild) == 0) {
    return "";
  }
  std::string why;
  std::string parent = FindForkParentTrace(path, &why);
  if (parent.empty() || depth + 1 >= kMaxForkDepth) return " parent=none";
  return absl::StrCat(" parent=", parent.size(), ":", parent, " ",
                      TraceFingerprint(parent, depth + 1));
}

// The trace's identity: "" if it is not a regular file we can read (then
// the cache is bypassed).
std::string TraceFingerprint(const std::string& path, int depth = 0) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  struct stat st;
  std::string head, tail;
  bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (ok) {
    uint64_t size = static_cast<uint64_t>(st.st_size);
    uint64_t head_n = std::min(size, kHeadBytes);
    uint64_t tail_n = std::min(size, kTailBytes);
    ok = ReadAt(fd, 0, head_n, &head) && ReadAt(fd, size - tail_n, tail_n, &tail);
  }
  close(fd);
  if (!ok) return "";
  return absl::StrFormat("size=%d mtime=%d ino=%d dev=%d hash=%016x", st.st_size, MtimeNs(st),
                         st.st_ino, st.st_dev, Fnv1a(tail, Fnv1a(head))) +
         ParentFingerprint(path, head, depth);
}

// A module file's state as the symbolizer will find it: its build id when
// it has one (a rebuilt binary has another; a copied or touched one keeps
// it, and the cache stays valid), else its size, mtime and inode.
std::string ModuleState(const std::string& path) {
  struct stat st;
  if (path.empty() || stat(path.c_str(), &st) != 0) return "missing";
  if (S_ISREG(st.st_mode)) {
    if (std::string id = ReadBuildIdHex(path); !id.empty()) return "build-id=" + id;
  }
  return absl::StrFormat("size=%d mtime=%d ino=%d dev=%d", st.st_size, MtimeNs(st), st.st_ino,
                         st.st_dev);
}

std::vector<std::string> ModulePaths(const std::vector<Module>& modules) {
  std::set<std::string> paths;
  for (const Module& m : modules) paths.insert(m.path);
  return {paths.begin(), paths.end()};
}

// The options that change the analysis (everything else is presentation).
// Growth is always tracked in a cached analysis, so track_growth is not in it.
std::string OptionsKey(const AnalyzeOptions& o) {
  std::string key = absl::StrCat("at=", static_cast<int>(o.at));
  if (o.at == AnalyzeOptions::At::kTime) absl::StrAppend(&key, " time=", o.at_time_us);
  if (o.at == AnalyzeOptions::At::kMarker) {
    absl::StrAppend(&key, " marker=", o.at_marker.size(), ":", o.at_marker);
  }
  absl::StrAppend(&key, " runtime=", o.classify_runtime ? 1 : 0,
                  absl::StrFormat(" window=%a", o.growth_window));
  return key;
}

bool IsDefaultKey(const AnalyzeOptions& o) {
  AnalyzeOptions defaults;
  return OptionsKey(o) == OptionsKey(defaults);
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string FallbackDir(const CacheOptions& cache) {
  if (!cache.fallback_dir.empty()) return cache.fallback_dir;
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && xdg[0] == '/') return absl::StrCat(xdg, "/heapsight");
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] == '/') return absl::StrCat(home, "/.cache/heapsight");
  return "";
}

// Reads a whole cache file if it is safe to trust its owner: a regular
// file, not a symlink, ours, writable only by us.
bool ReadCacheFile(const std::string& path, std::string* data) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st;
  bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
            (st.st_mode & (S_IWGRP | S_IWOTH)) == 0 &&
            static_cast<uint64_t>(st.st_size) >= kPrefixSize &&
            static_cast<uint64_t>(st.st_size) <= kMaxCacheFile &&
            ReadAt(fd, 0, static_cast<size_t>(st.st_size), data);
  close(fd);
  return ok;
}

struct Expected {
  std::string key;
  std::string trace;
};

// The profile in `file` if everything it was made from still holds.
absl::StatusOr<ProcessProfile> Load(std::string_view file, const Expected& expected) {
  if (file.size() < kPrefixSize || std::memcmp(file.data(), kMagic, sizeof kMagic) != 0) {
    return absl::DataLossError("not a cache file");
  }
  uint32_t version = 0;
  for (int i = 0; i < 4; ++i) {
    version |= static_cast<uint32_t>(static_cast<uint8_t>(file[sizeof kMagic + i])) << (8 * i);
  }
  if (version != kFileVersion) return absl::FailedPreconditionError("other cache version");
  std::string_view frame = file.substr(kPrefixSize);
  unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR || size > kMaxPayload ||
      size > frame.size() * kMaxExpansion) {
    return absl::DataLossError("bad zstd frame");
  }
  std::string payload(size, '\0');
  size_t got = ZSTD_decompress(payload.data(), payload.size(), frame.data(), frame.size());
  if (ZSTD_isError(got) || got != size) return absl::DataLossError("corrupt zstd frame");
  ByteReader r(payload);
  if (r.Bytes() != HEAPSIGHT_VERSION || r.Bytes() != ProfileSchemaTag() ||
      r.Bytes() != expected.key || r.Bytes() != expected.trace) {
    return absl::FailedPreconditionError("stale");
  }
  uint64_t modules = r.Count(2);
  for (uint64_t i = 0; i < modules && r.ok(); ++i) {
    std::string path = r.Bytes();
    std::string state = r.Bytes();
    if (r.ok() && ModuleState(path) != state) return absl::FailedPreconditionError("stale module");
  }
  if (!r.ok()) return absl::DataLossError("malformed cache header");
  // The profile is the rest of the payload.
  return DecodeProfile(std::string_view(payload).substr(r.position()));
}

std::string Serialize(const ProcessProfile& profile, const Expected& expected) {
  ByteWriter w;
  w.Bytes(HEAPSIGHT_VERSION);
  w.Bytes(ProfileSchemaTag());
  w.Bytes(expected.key);
  w.Bytes(expected.trace);
  std::vector<std::string> paths = ModulePaths(profile.modules);
  w.U64(paths.size());
  for (const std::string& path : paths) {
    w.Bytes(path);
    w.Bytes(ModuleState(path));
  }
  std::string payload = std::move(w.buffer());
  EncodeProfile(profile, &payload);

  std::string file(kMagic, sizeof kMagic);
  for (int i = 0; i < 4; ++i) file.push_back(static_cast<char>(kFileVersion >> (8 * i)));
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  if (cctx == nullptr) return "";
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
  size_t bound = ZSTD_compressBound(payload.size());
  file.resize(kPrefixSize + bound);
  size_t n = ZSTD_compress2(cctx, file.data() + kPrefixSize, bound, payload.data(), payload.size());
  ZSTD_freeCCtx(cctx);
  if (ZSTD_isError(n)) return "";
  file.resize(kPrefixSize + n);
  return file;
}

// Writes `data` to `path` through a fresh 0600 temporary in the same
// directory and a rename. False (and nothing left behind) on any failure.
bool WriteAtomically(const std::string& path, const std::string& data) {
  std::string tmp = absl::StrCat(Dirname(path), "/.", Basename(path), ".XXXXXX");
  int fd = mkostemp(tmp.data(), O_CLOEXEC);  // O_CREAT|O_EXCL, mode 0600
  if (fd < 0) return false;
  bool ok = fchmod(fd, 0600) == 0;
  size_t done = 0;
  while (ok && done < data.size()) {
    ssize_t w = write(fd, data.data() + done, data.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) ok = false;
    else done += static_cast<size_t>(w);
  }
  ok = close(fd) == 0 && ok;
  // rename() replaces a symlink at `path` itself; it never writes through it.
  if (ok && rename(tmp.c_str(), path.c_str()) == 0) return true;
  unlink(tmp.c_str());
  return false;
}

bool MakeDirs(const std::string& dir) {
  if (dir.empty()) return false;
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) return S_ISDIR(st.st_mode);
  std::string parent = Dirname(dir);
  if (parent != dir && !MakeDirs(parent)) return false;
  return mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST;
}

}  // namespace

bool CacheEnabledByEnvironment() {
  const char* v = std::getenv(kNoCacheEnv);
  return v == nullptr || v[0] == '\0' || std::string_view(v) == "0";
}

std::vector<std::string> CacheFileCandidates(const std::string& path,
                                             const AnalyzeOptions& options,
                                             const CacheOptions& cache) {
  std::string suffix =
      IsDefaultKey(options)
          ? std::string(".cache")
          : absl::StrFormat(".%016x.cache", Fnv1a(OptionsKey(options)));
  std::vector<std::string> out = {path + suffix};
  std::string dir = FallbackDir(cache);
  if (!dir.empty()) {
    char* real = realpath(path.c_str(), nullptr);
    std::string absolute = real != nullptr ? real : path;
    std::free(real);
    out.push_back(absl::StrFormat("%s/%016x-%s%s", dir, Fnv1a(absolute), Basename(path), suffix));
  }
  return out;
}

absl::StatusOr<ProcessProfile> AnalyzeTraceCached(const std::string& path,
                                                  const AnalyzeOptions& options,
                                                  const CacheOptions& cache,
                                                  CacheOutcome* outcome) {
  CacheOutcome ignored;
  if (outcome == nullptr) outcome = &ignored;
  std::string trace = (cache.enabled && path != "-") ? TraceFingerprint(path) : "";
  if (trace.empty()) {
    *outcome = CacheOutcome::kBypassed;
    return AnalyzeTrace(path, options);
  }
  Expected expected{OptionsKey(options), trace};
  // What a cached analysis holds beyond the request is dropped, so the
  // caller gets exactly what AnalyzeTrace(path, options) would give.
  auto fit = [&options, &path](ProcessProfile& p) {
    p.trace_path = path;
    if (!options.track_growth) {
      p.growth.clear();
      p.growth_window_begin_us = 0;
      p.growth_window_end_us = 0;
    }
  };
  std::vector<std::string> candidates = CacheFileCandidates(path, options, cache);
  for (const std::string& candidate : candidates) {
    std::string file;
    if (!ReadCacheFile(candidate, &file)) continue;
    absl::StatusOr<ProcessProfile> cached = Load(file, expected);
    if (!cached.ok()) continue;
    fit(*cached);
    *outcome = CacheOutcome::kHit;
    return cached;
  }
  AnalyzeOptions full = options;
  full.track_growth = true;
  absl::StatusOr<ProcessProfile> profile = AnalyzeTrace(path, full);
  if (!profile.ok()) return profile;
  *outcome = CacheOutcome::kMissUnwritten;
  // A trace still being written (or rewritten meanwhile) is not cached.
  if (TraceFingerprint(path) == trace) {
    std::string data = Serialize(*profile, expected);
    if (!data.empty()) {
      bool written = WriteAtomically(candidates[0], data);
      if (!written && candidates.size() > 1 && MakeDirs(Dirname(candidates[1]))) {
        written = WriteAtomically(candidates[1], data);
      }
      if (written) *outcome = CacheOutcome::kMiss;
    }
  }
  fit(*profile);
  return profile;
}

}  // namespace heapsight::analyzer::cache
