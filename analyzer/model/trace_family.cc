// analyzer/model/trace_family.cc: see trace_family.h.
#include "analyzer/model/trace_family.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <system_error>

#include "format/chunk_decoder.h"
#include "format/trace_format.h"
#include "format/trace_reader.h"

namespace heapsight::analyzer {
namespace {

// Records looked at in a thread's first chunk before giving up: the
// kProcess record is the first one the preload writes.
constexpr int kRecordsToLook = 16;
// Blocks whose headers are read before giving up on a trace.
constexpr size_t kMaxBlocks = 1 << 20;

std::string FileName(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

}  // namespace

absl::StatusOr<TraceIdentity> ReadTraceIdentity(const std::string& path) {
  absl::StatusOr<std::unique_ptr<format::TraceReader>> reader = format::TraceReader::Open(path);
  if (!reader.ok()) return reader.status();
  format::TraceReader& r = **reader;
  TraceIdentity id;
  id.path = path;
  id.pid = r.header().pid;
  id.parent_pid = r.header().ppid;
  uint64_t offset = r.position();
  std::vector<uint8_t> chunk;
  for (size_t blocks = 0; blocks < kMaxBlocks; ++blocks) {
    format::BlockHeader block{};
    uint64_t next = 0;
    if (!r.ReadBlockHeaderAt(offset, &block, &next).ok()) break;  // the end, or a cut block
    if (block.chunk.sequence == 0 && r.ReadChunkAt(offset, &chunk).ok()) {
      format::ChunkDecoder decoder(chunk.data(), chunk.size());
      format::Record record;
      for (int i = 0; i < kRecordsToLook && decoder.Next(&record); ++i) {
        if (record.tag != format::RecordTag::kProcess) continue;
        id.has_process = true;
        id.parent_pid = record.process.parent_pid;
        id.parent_trace = std::string(record.process.parent_trace);
        return id;
      }
    }
    if (next <= offset) break;
    offset = next;
  }
  return id;
}

absl::StatusOr<std::vector<std::string>> FindTraceFamily(const std::string& seed) {
  absl::StatusOr<TraceIdentity> seed_id = ReadTraceIdentity(seed);
  if (!seed_id.ok()) return seed_id.status();
  std::filesystem::path dir = std::filesystem::path(seed).parent_path();
  std::vector<TraceIdentity> traces = {*seed_id};
  std::error_code ec;
  std::vector<std::string> names;
  for (std::filesystem::directory_iterator it(dir.empty() ? "." : dir, ec), end;
       !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".hst") != 0) continue;
    if (name == FileName(seed) || !it->is_regular_file(ec)) continue;
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    std::string path = dir.empty() ? name : (dir / name).string();
    absl::StatusOr<TraceIdentity> id = ReadTraceIdentity(path);
    if (id.ok() && id->has_process) traces.push_back(std::move(*id));
  }
  // Parent links by file name: the directory holds one file of each name,
  // and the recorded path may be spelled differently (absolute, or another
  // mount of the same directory).
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < traces.size(); ++i) by_name[FileName(traces[i].path)] = i;
  std::vector<int> parent(traces.size(), -1);
  for (size_t i = 0; i < traces.size(); ++i) {
    if (traces[i].parent_trace.empty()) continue;
    auto it = by_name.find(FileName(traces[i].parent_trace));
    if (it != by_name.end() && it->second != i) parent[i] = static_cast<int>(it->second);
  }
  for (size_t i = 0; i < traces.size(); ++i) {  // cut cycles (hostile traces)
    int at = parent[i];
    for (size_t steps = 0; at >= 0 && steps <= traces.size(); ++steps) {
      if (at == static_cast<int>(i)) {
        parent[i] = -1;
        break;
      }
      at = parent[at];
    }
  }
  // The seed's root, then everything below it, parents first.
  size_t root = 0;
  while (parent[root] >= 0) root = static_cast<size_t>(parent[root]);
  std::vector<std::string> out;
  std::function<void(size_t)> walk = [&](size_t i) {
    out.push_back(traces[i].path);
    std::vector<size_t> children;
    for (size_t c = 0; c < traces.size(); ++c) {
      if (parent[c] == static_cast<int>(i)) children.push_back(c);
    }
    std::sort(children.begin(), children.end(),
              [&](size_t x, size_t y) { return traces[x].path < traces[y].path; });
    for (size_t c : children) walk(c);
  };
  walk(root);
  return out;
}

}  // namespace heapsight::analyzer
