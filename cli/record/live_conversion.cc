// cli/record/live_conversion.cc: see live_conversion.h.
#include "cli/record/live_conversion.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analyzer/model/fork_inheritance.h"
#include "cli/monotonic_clock.h"
#include "cli/record/child_process.h"

namespace heapsight::record {
namespace {

// DrainInTime's step of trace time, and how long it converts before it
// trusts its estimate of the rest.
constexpr uint64_t kDrainStepUs = 20'000;
constexpr uint64_t kEstimateAfterUs = 10'000;

}  // namespace

LiveConversion::LiveConversion(std::function<std::vector<std::string>()> list_traces,
                               int zstd_level, uint64_t merge_window_us)
    : list_traces_(std::move(list_traces)),
      zstd_level_(zstd_level),
      merge_window_us_(merge_window_us) {}

LiveConversion::~LiveConversion() {
  if (thread_.joinable()) {
    stop_.store(true, std::memory_order_release);
    thread_.join();
  }
  for (auto& m : members_) {
    if (m->fd >= 0) {
      close(m->fd);
      unlink(m->temp.c_str());
    }
  }
}

void LiveConversion::Start() {
  thread_ = StartThreadWithoutForwardedSignals([this] { Run(); });
}

void LiveConversion::Run() {
  while (!stop_.load(std::memory_order_acquire)) {
    // A backlog is read at once; a quiet program lets the thread sleep.
    if (Poll() == 0) usleep(20000);
  }
}

void LiveConversion::GiveUp(Member& m, std::string why) {
  m.done = true;
  m.why_not = std::move(why);
  m.converter.reset();
  if (m.fd >= 0) {
    close(m.fd);
    m.fd = -1;
    unlink(m.temp.c_str());
  }
}

size_t LiveConversion::Poll() {
  // The manifest lists each trace once, in the order written, and only
  // grows: the traces not seen yet are its tail.
  std::vector<std::string> paths = list_traces_();
  for (size_t i = members_.size(); i < paths.size(); ++i) {
    auto m = std::make_unique<Member>();
    m->path = paths[i];
    m->temp = paths[i] + ".converting";
    m->tail = std::make_unique<analyzer::TraceTail>(paths[i]);
    members_.push_back(std::move(m));
  }
  size_t read = 0;
  for (auto& mp : members_) {
    Member& m = *mp;
    if (m.done) continue;
    absl::StatusOr<size_t> n = m.tail->Poll([&](const std::vector<uint8_t>& chunk) {
      if (m.converter == nullptr) {
        // The first chunk: the header is known, so is whether to convert.
        const format::FileHeader& h = m.tail->header();
        if (!format::HasAddressFrees(h)) {
          m.done = true;
          return absl::CancelledError("not version 6");
        }
        if ((h.flags & format::kFileFlagForkChild) != 0) {
          // Converted by Finish, once its parent's trace has the fork.
          m.fork_child = true;
          return absl::CancelledError("a fork child");
        }
        m.fd = open(m.temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (m.fd < 0) {
          return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", m.temp));
        }
        absl::StatusOr<std::unique_ptr<analyzer::PairingConverter>> c =
            analyzer::PairingConverter::Create(h, m.path, m.fd, m.temp, zstd_level_);
        if (!c.ok()) return c.status();
        m.converter = std::move(*c);
      }
      return m.converter->AddChunk(chunk);
    }, finishing_ ? SIZE_MAX : kBlocksPerPoll);
    if (n.ok() && m.converter != nullptr && !finishing_) {
      // What no chunk still to come can precede (the file comment). After
      // the exit, DrainInTime drains, in steps it can stop between.
      if (absl::Status s = m.converter->DrainBehindNewest(merge_window_us_); !s.ok()) {
        n = s;
      } else if (m.tail->unread() > kMaxBehindBytes) {
        GiveUp(m, absl::StrCat("the pairing fell more than ", kMaxBehindBytes >> 20,
                               " MB behind the program's writes"));
        continue;
      }
    }
    if (!n.ok()) {
      if (absl::IsNotFound(n.status())) continue;  // not there yet
      if (absl::IsCancelled(n.status())) {
        GiveUp(m, "");
      } else {
        GiveUp(m, std::string(n.status().message()));
      }
      continue;
    }
    read += *n;
  }
  return read;
}

void LiveConversion::Conclude(Member& m, absl::Status s,
                              const analyzer::PairingConversionStats& stats) {
  if (s.ok() && !stats.ended) {
    s = absl::AbortedError(
        "the process ended without its end record (killed?): its chunks still in the spool "
        "are appended by the next reader of the version-6 trace");
  }
  if (s.ok()) {
    m.ready = true;
    return;
  }
  unlink(m.temp.c_str());
  m.why_not = std::string(s.message());
}

bool LiveConversion::PastDeadline() const {
  return deadline_us_ != kNoLimit && MonotonicUs() >= deadline_us_;
}

std::string LiveConversion::LateReason(uint64_t estimate_us) const {
  const std::string wait = absl::StrFormat("%.2f s", static_cast<double>(wait_us_) / 1e6);
  const std::string later = "; `heapsight convert` converts it later";
  if (estimate_us == 0) {
    return absl::StrCat("not converted within ", wait, " of the program's exit (--convert-wait)",
                        later);
  }
  return absl::StrCat("converting the rest would have taken about ",
                      absl::StrFormat("%.2f s", static_cast<double>(estimate_us) / 1e6),
                      " more, past --convert-wait's ", wait, " after the program's exit", later);
}

absl::Status LiveConversion::DrainInTime(Member& m, bool* late, uint64_t* estimate_us) {
  *late = false;
  *estimate_us = 0;
  if (deadline_us_ == kNoLimit) return absl::OkStatus();  // the converter's Finish does it all
  const uint64_t begin = MonotonicUs();
  const size_t waiting_at_begin = m.converter->waiting_chunks();
  const uint64_t end = m.converter->newest_base_time_us();
  for (;;) {
    const uint64_t now = MonotonicUs();
    if (now >= deadline_us_) {
      *late = true;
      return absl::OkStatus();
    }
    // The chunks converted so far tell how long the rest takes; the first
    // ones, decoded while the file cache and the pairing warm up, are not
    // trusted alone.
    const size_t waiting = m.converter->waiting_chunks();
    const size_t done = waiting_at_begin > waiting ? waiting_at_begin - waiting : 0;
    if (done > 0 && now - begin >= kEstimateAfterUs) {
      const uint64_t rest = (now - begin) * waiting / done;
      if (now + rest > deadline_us_) {
        *late = true;
        *estimate_us = rest;
        return absl::OkStatus();
      }
    }
    const uint64_t drained = m.converter->drained_us();
    if (drained >= end) return absl::OkStatus();
    if (absl::Status s = m.converter->Drain(std::min(end, drained + kDrainStepUs)); !s.ok()) {
      return s;
    }
  }
}

void LiveConversion::FinishLive(Member& m, analyzer::PairingConversionStats* stats) {
  bool late = false;
  uint64_t estimate_us = 0;
  absl::Status s = DrainInTime(m, &late, &estimate_us);
  if (s.ok() && late) {
    *stats = m.converter->stats();
    GiveUp(m, LateReason(estimate_us));
    return;
  }
  // The rest: the events at or past the newest chunk's base time, and the
  // held ones (the whole trace without a deadline).
  if (s.ok()) s = m.converter->Finish();
  *stats = m.converter->stats();
  if (s.ok() && stats->pairing.forced != 0) {
    s = absl::AbortedError(absl::StrCat(
        stats->pairing.forced,
        " events could not be put in order while the program ran (a chunk came later than "
        "the merge window)"));
  }
  if (close(m.fd) != 0 && s.ok()) {
    s = absl::ErrnoToStatus(errno, absl::StrCat("cannot write ", m.temp));
  }
  m.fd = -1;
  m.converter.reset();
  Conclude(m, std::move(s), *stats);
}

void LiveConversion::ConvertForkChild(Member& m, analyzer::PairingConversionStats* stats,
                                      const analyzer::ForkInheritance* inheritance) {
  Conclude(m, analyzer::ConvertAddressTrace(m.path, m.temp, zstd_level_, stats, inheritance),
           *stats);
}

void LiveConversion::ConvertForkChildren(const std::vector<size_t>& children,
                                         std::vector<Outcome>* out) {
  // By parent trace; each parent's children by pid, in manifest order
  // (the order of their forks, for a pid that came round again).
  struct Family {
    std::vector<uint64_t> pids;
    absl::flat_hash_map<uint64_t, std::deque<size_t>> by_pid;
  };
  std::map<std::string, Family> families;
  for (size_t i : children) {
    Member& m = *members_[i];
    std::string why;
    const std::string parent = analyzer::FindForkParentTrace(m.path, &why);
    if (parent.empty()) {
      // Says why (no parent trace) as `heapsight convert` does.
      ConvertForkChild(m, &(*out)[i].stats, nullptr);
      continue;
    }
    // The header Poll read to find it a fork child.
    const uint64_t pid = m.tail->header().pid;
    Family& f = families[parent];
    f.pids.push_back(pid);
    f.by_pid[pid].push_back(i);
  }
  for (auto& [parent, f] : families) {
    if (PastDeadline()) {
      // Not even the pass over the parent: the family stays version 6.
      for (auto& [pid, waiting] : f.by_pid) {
        for (size_t i : waiting) GiveUp(*members_[i], LateReason(0));
      }
      continue;
    }
    analyzer::ReadForkInheritances(
        parent, f.pids, [&](uint64_t pid, analyzer::ForkInheritance inheritance) {
          std::deque<size_t>& waiting = f.by_pid[pid];
          if (waiting.empty()) return;
          const size_t i = waiting.front();
          waiting.pop_front();
          // Past the deadline the pass still reads the parent on to its
          // last child's fork (it cannot be left midway), but converts
          // nothing more.
          if (PastDeadline()) {
            GiveUp(*members_[i], LateReason(0));
            return;
          }
          ConvertForkChild(*members_[i], &(*out)[i].stats, &inheritance);
        });
  }
}

std::vector<LiveConversion::Outcome> LiveConversion::Finish(uint64_t wait_us) {
  if (thread_.joinable()) {
    stop_.store(true, std::memory_order_release);
    thread_.join();
  }
  wait_us_ = wait_us;
  finishing_ = wait_us != kNoLimit;
  const uint64_t start = MonotonicUs();
  deadline_us_ = wait_us == kNoLimit || wait_us > kNoLimit - start ? kNoLimit : start + wait_us;
  // What the program wrote since the thread's last look.
  while (Poll() != 0) {
    if (PastDeadline()) {
      // The traces still being read stay version 6.
      for (auto& m : members_) {
        if (m->converter != nullptr && !m->done) GiveUp(*m, LateReason(0));
      }
      break;
    }
  }
  // Every conversion into its .converting file first (the fork children's
  // read their parents' version-6 traces), then the renames.
  std::vector<Outcome> out(members_.size());
  std::vector<size_t> children;
  for (size_t i = 0; i < members_.size(); ++i) {
    Member& m = *members_[i];
    out[i].trace = m.path;
    if (m.converter != nullptr && !m.done) {
      FinishLive(m, &out[i].stats);
    } else if (m.fork_child) {
      children.push_back(i);
    } else {
      // Not version 6, given up, or never a chunk read (an empty trace).
      GiveUp(m, m.why_not);
    }
  }
  ConvertForkChildren(children, &out);
  for (size_t i = 0; i < members_.size(); ++i) {
    Member& m = *members_[i];
    // A spool left beside the trace holds chunks not in it yet, which the
    // next reader appends (format/spool_recovery.h): to the version-6
    // file, never to the converted one.
    if (m.ready && access((m.path + ".spool").c_str(), F_OK) == 0) {
      m.ready = false;
      unlink(m.temp.c_str());
      m.why_not = "its spool still holds chunks";
    }
  }
  // A fork child that stays version 6 reads its parent's addresses: the
  // parent stays too, and so on up (a parent may itself be a fork child).
  absl::flat_hash_map<std::string, size_t> by_path;
  for (size_t i = 0; i < members_.size(); ++i) by_path[members_[i]->path] = i;
  std::vector<size_t> kept;
  for (size_t i = 0; i < members_.size(); ++i) {
    if (members_[i]->fork_child && !members_[i]->ready) kept.push_back(i);
  }
  while (!kept.empty()) {
    Member& child = *members_[kept.back()];
    kept.pop_back();
    std::string why;
    const std::string parent = analyzer::FindForkParentTrace(child.path, &why);
    auto it = by_path.find(parent);
    if (parent.empty() || it == by_path.end()) continue;
    Member& p = *members_[it->second];
    if (!p.ready) continue;  // stays version 6 already (and was counted)
    p.ready = false;
    unlink(p.temp.c_str());
    p.why_not = absl::StrCat("its fork child's trace ", child.path,
                             " stays version 6 and reads this one's addresses");
    if (p.fork_child) kept.push_back(it->second);
  }
  for (size_t i = 0; i < members_.size(); ++i) {
    Member& m = *members_[i];
    if (m.ready) {
      if (rename(m.temp.c_str(), m.path.c_str()) == 0) {
        out[i].converted = true;
      } else {
        m.why_not = absl::StrCat("cannot replace ", m.path, ": ", std::strerror(errno));
        unlink(m.temp.c_str());
      }
      m.ready = false;
    }
    out[i].why_not = out[i].converted ? "" : m.why_not;
    m.done = true;
  }
  return out;
}

}  // namespace heapsight::record
