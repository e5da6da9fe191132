// analyzer/model/trace_family.cc: see trace_family.h.
#include "analyzer/model/trace_family.h"

#include <dirent.h>
#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "format/chunk_decoder.h"
#include "format/trace_reader.h"

namespace heapsight::analyzer {
namespace {

std::string Canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) == nullptr) return "";
  return buf;
}

bool HasGlobCharacters(const std::string& s) {
  return s.find_first_of("*?[") != std::string::npos;
}

// Union-find over the indices of a directory's traces.
class Links {
 public:
  explicit Links(size_t n) : parent_(n) {
    for (size_t i = 0; i < n; ++i) parent_[i] = i;
  }
  size_t Root(size_t i) {
    while (parent_[i] != i) i = parent_[i] = parent_[parent_[i]];
    return i;
  }
  void Join(size_t a, size_t b) { parent_[Root(a)] = Root(b); }

 private:
  std::vector<size_t> parent_;
};

}  // namespace

std::string TraceDirectory(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string TraceFileName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::StatusOr<TraceIdentity> ReadTraceIdentity(const std::string& path) {
  absl::StatusOr<std::unique_ptr<format::TraceReader>> reader = format::TraceReader::Open(path);
  if (!reader.ok()) return reader.status();
  TraceIdentity id;
  id.path = path;
  id.canonical = Canonical(path);
  const format::FileHeader& h = (*reader)->header();
  id.pid = h.pid;
  id.ppid = h.ppid;
  id.start_realtime_ns = h.start_realtime_ns;
  id.flags = h.flags;
  std::vector<uint8_t> chunk;
  for (int block = 0; block < kMaxIdentityBlocks && (*reader)->NextChunk(&chunk); ++block) {
    format::ChunkDecoder decoder(chunk.data(), chunk.size(), format::HasCompactFrees(h),
                                 format::HasAddressFrees(h));
    format::Record r;
    while (decoder.ok() && decoder.Next(&r)) {
      if (r.tag != format::RecordTag::kProcess) continue;
      id.has_process = true;
      id.exe = std::string(r.process.executable);
      id.parent_trace = std::string(r.process.parent_trace);
      if (r.process.parent_pid != 0) id.ppid = r.process.parent_pid;
      return id;
    }
  }
  if (!(*reader)->status().ok()) return (*reader)->status();
  return id;  // no kProcess record: a family of its own
}

void FamilyOrder(std::vector<TraceIdentity>* traces) {
  std::stable_sort(traces->begin(), traces->end(),
                   [](const TraceIdentity& a, const TraceIdentity& b) {
                     return std::tie(a.start_realtime_ns, a.pid, a.path) <
                            std::tie(b.start_realtime_ns, b.pid, b.path);
                   });
}

absl::StatusOr<std::vector<TraceIdentity>> FindTraceFamily(const std::string& trace) {
  absl::StatusOr<TraceIdentity> self = ReadTraceIdentity(trace);
  if (!self.ok()) return self.status();
  const std::string dir = TraceDirectory(trace);
  std::vector<TraceIdentity> all;
  all.push_back(std::move(*self));
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": cannot list the directory: ", std::strerror(errno)));
  }
  size_t scanned = 0;
  while (dirent* e = readdir(d)) {
    if (++scanned > kMaxFamilyScan) break;
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir == "/" ? "/" + name : absl::StrCat(dir, "/", name);
    if (!IsRegularFile(path)) continue;
    std::string canonical = Canonical(path);
    if (!canonical.empty() && canonical == all.front().canonical) continue;
    absl::StatusOr<TraceIdentity> id = ReadTraceIdentity(path);
    if (!id.ok()) continue;  // not a trace: not part of any family
    all.push_back(std::move(*id));
  }
  closedir(d);

  // Every trace is reachable by its path as given, its realpath and its
  // file name (a relative or moved parent_trace).
  absl::flat_hash_map<std::string, size_t> by_path;
  absl::flat_hash_map<std::string, size_t> by_name;
  for (size_t i = 0; i < all.size(); ++i) {
    by_path.try_emplace(all[i].path, i);
    if (!all[i].canonical.empty()) by_path.try_emplace(all[i].canonical, i);
    by_name.try_emplace(TraceFileName(all[i].path), i);
  }
  Links links(all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    const std::string& parent = all[i].parent_trace;
    if (parent.empty()) continue;
    auto it = by_path.find(parent);
    if (it == by_path.end()) {
      std::string canonical = Canonical(parent);
      if (!canonical.empty()) it = by_path.find(canonical);
    }
    if (it == by_path.end()) {
      auto named = by_name.find(TraceFileName(parent));
      if (named != by_name.end()) it = by_path.find(all[named->second].path);
    }
    if (it != by_path.end() && it->second != i) links.Join(i, it->second);
  }
  // Without a parent_trace (an exec'd image whose forked parent wrote no
  // trace of its own before the exec, or a preload that did not pass the
  // path on): the trace of the parent pid that started before it. The
  // latest such start wins, so a reused pid links to its newest holder.
  for (size_t i = 0; i < all.size(); ++i) {
    if (!all[i].parent_trace.empty() || all[i].ppid == 0) continue;
    size_t best = all.size();
    for (size_t j = 0; j < all.size(); ++j) {
      if (j == i || all[j].pid != all[i].ppid) continue;
      if (all[j].start_realtime_ns > all[i].start_realtime_ns) continue;
      if (best == all.size() || all[j].start_realtime_ns > all[best].start_realtime_ns) best = j;
    }
    if (best != all.size()) links.Join(i, best);
  }
  std::vector<TraceIdentity> family;
  const size_t root = links.Root(0);
  for (size_t i = 0; i < all.size(); ++i) {
    if (links.Root(i) == root) family.push_back(std::move(all[i]));
  }
  FamilyOrder(&family);
  return family;
}

absl::StatusOr<std::vector<std::string>> ExpandTraceArguments(
    const std::vector<std::string>& args, bool whole_family) {
  std::vector<std::string> named;
  for (const std::string& arg : args) {
    if (IsRegularFile(arg) || !HasGlobCharacters(arg)) {
      named.push_back(arg);
      continue;
    }
    glob_t g{};
    int rc = glob(arg.c_str(), GLOB_ERR, nullptr, &g);
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) named.push_back(g.gl_pathv[i]);
    }
    globfree(&g);
    if (rc == GLOB_NOMATCH) {
      return absl::NotFoundError(absl::StrCat(arg, ": no trace matches this pattern"));
    }
    if (rc != 0) return absl::NotFoundError(absl::StrCat(arg, ": cannot expand the pattern"));
  }
  std::vector<std::string> out;
  absl::flat_hash_set<std::string> seen;
  auto add = [&](const std::string& path) {
    std::string canonical = Canonical(path);
    if (seen.insert(canonical.empty() ? path : canonical).second) out.push_back(path);
  };
  if (!whole_family) {
    for (const std::string& path : named) add(path);
    return out;
  }
  std::vector<TraceIdentity> traces;
  for (const std::string& path : named) {
    std::string canonical = Canonical(path);
    if (seen.contains(canonical.empty() ? path : canonical)) continue;  // in a family already
    absl::StatusOr<std::vector<TraceIdentity>> family = FindTraceFamily(path);
    if (!family.ok()) return family.status();
    for (TraceIdentity& id : *family) {
      if (seen.insert(id.canonical.empty() ? id.path : id.canonical).second) {
        traces.push_back(std::move(id));
      }
    }
  }
  FamilyOrder(&traces);
  for (const TraceIdentity& id : traces) out.push_back(id.path);
  return out;
}

}  // namespace heapsight::analyzer
