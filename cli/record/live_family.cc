// cli/record/live_family.cc: see live_family.h.
#include "cli/record/live_family.h"

#include "absl/container/flat_hash_set.h"
#include "cli/monotonic_clock.h"

namespace heapsight::record {

LiveFamily::LiveFamily(std::function<std::vector<std::string>()> list_traces,
                       bool release_consumed)
    : list_traces_(std::move(list_traces)), release_consumed_(release_consumed) {}

size_t LiveFamily::Poll(size_t max_blocks) {
  std::vector<std::string> paths = list_traces_();
  if (paths.size() != members_.size()) {
    absl::flat_hash_set<std::string> known;
    for (const auto& m : members_) known.insert(m->path);
    for (const std::string& path : paths) {
      if (!known.insert(path).second) continue;
      auto m = std::make_unique<Member>();
      m->path = path;
      m->tail = std::make_unique<analyzer::TraceTail>(path, release_consumed_);
      if (!rotate_dir_.empty()) {
        std::string name = path.substr(path.rfind('/') + 1);
        if (name.size() > 4 && name.compare(name.size() - 4, 4, ".hst") == 0) {
          name.resize(name.size() - 4);
        }
        m->rotator = std::make_unique<TraceRotator>(rotate_dir_ + "/" + name, limits_);
        Member* mp = m.get();
        // Before the chunk is applied: the segment's preamble is the state
        // up to this block.
        m->tail->set_raw_sink([this, mp](const std::string& block) {
          return mp->rotator->Append(block, ProcessOf(*mp));
        });
      }
      members_.push_back(std::move(m));
    }
  }
  size_t applied = 0;
  for (auto& m : members_) {
    if (!m->error.empty()) continue;
    // Before the read: the file holds every event older than this less
    // the flush interval once the read reaches its end.
    const uint64_t now_ns = MonotonicNs();
    absl::StatusOr<size_t> n = m->tail->Poll(
        [&](const std::vector<uint8_t>& chunk) { return ProcessOf(*m).ApplyChunk(chunk); },
        max_blocks);
    if (!n.ok()) {
      // A file not there yet is looked for again; anything else stops it.
      if (!absl::IsNotFound(n.status())) m->error = std::string(n.status().message());
      continue;
    }
    if (m->process == nullptr && m->tail->has_header()) ProcessOf(*m);
    applied += *n;
    if (*n < max_blocks && m->process != nullptr) {
      // At the end of the file: the time merge (address frees) may apply
      // what is older than the clock less its window, even if no chunk
      // comes again (timestamps count from start_monotonic_ns).
      const uint64_t start_ns = m->tail->header().start_monotonic_ns;
      if (now_ns > start_ns) {
        if (absl::Status s = m->process->AdvanceClock((now_ns - start_ns) / 1000); !s.ok()) {
          m->error = std::string(s.message());
        }
      }
    }
  }
  return applied;
}

analyzer::LiveProcess& LiveFamily::ProcessOf(Member& m) {
  if (m.process == nullptr) {
    m.process =
        std::make_unique<analyzer::LiveProcess>(m.path, m.tail->header(), merge_window_us_);
  }
  return *m.process;
}

void LiveFamily::Finish() {
  for (auto& m : members_) {
    if (!m->error.empty() || m->process == nullptr) continue;
    if (absl::Status s = m->process->DrainMerge(); !s.ok()) m->error = std::string(s.message());
  }
}

std::vector<analyzer::LiveProcess*> LiveFamily::processes() const {
  std::vector<analyzer::LiveProcess*> out;
  for (const auto& m : members_) {
    if (m->process != nullptr) out.push_back(m->process.get());
  }
  return out;
}

analyzer::LiveProcess* LiveFamily::Find(uint64_t pid) const {
  analyzer::LiveProcess* found = nullptr;
  for (const auto& m : members_) {
    if (m->process != nullptr && m->process->pid() == pid) found = m->process.get();
  }
  return found;
}

std::vector<std::string> LiveFamily::segments() const {
  std::vector<std::string> out;
  for (const auto& m : members_) {
    if (m->rotator != nullptr) out.insert(out.end(), m->rotator->segments().begin(),
                                          m->rotator->segments().end());
  }
  return out;
}

uint64_t LiveFamily::bytes_read() const {
  uint64_t sum = 0;
  for (const auto& m : members_) sum += m->tail->consumed();
  return sum;
}

}  // namespace heapsight::record
