// cli/record/live_conversion.cc: see live_conversion.h.
#include "cli/record/live_conversion.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "cli/record/child_process.h"

namespace heapsight::record {

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
    });
    if (n.ok() && m.converter != nullptr) {
      // What no chunk still to come can precede (the file comment).
      const uint64_t newest = m.converter->newest_base_time_us();
      if (newest > merge_window_us_) {
        if (absl::Status s = m.converter->Drain(newest - merge_window_us_); !s.ok()) n = s;
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

std::vector<LiveConversion::Outcome> LiveConversion::Finish() {
  if (thread_.joinable()) {
    stop_.store(true, std::memory_order_release);
    thread_.join();
  }
  // What the program wrote since the thread's last look.
  while (Poll() != 0) {
  }
  std::vector<Outcome> out;
  for (auto& mp : members_) {
    Member& m = *mp;
    Outcome o;
    o.trace = m.path;
    if (m.converter != nullptr && !m.done) {
      absl::Status s = m.converter->Finish();
      o.stats = m.converter->stats();
      if (s.ok() && o.stats.pairing.forced != 0) {
        s = absl::AbortedError(absl::StrCat(
            o.stats.pairing.forced,
            " events could not be put in order while the program ran (a chunk came later than "
            "the merge window)"));
      }
      if (s.ok() && !o.stats.ended) {
        s = absl::AbortedError(
            "the process ended without its end record (killed?): its chunks still in the spool "
            "are appended by the next reader of the version-6 trace");
      }
      // A spool left beside the trace holds chunks not in it yet, which
      // the next reader appends (format/spool_recovery.h): to the
      // version-6 file, never to the converted one.
      if (s.ok() && access((m.path + ".spool").c_str(), F_OK) == 0) {
        s = absl::AbortedError("its spool still holds chunks");
      }
      if (close(m.fd) != 0 && s.ok()) {
        s = absl::ErrnoToStatus(errno, absl::StrCat("cannot write ", m.temp));
      }
      m.fd = -1;
      if (s.ok() && rename(m.temp.c_str(), m.path.c_str()) != 0) {
        s = absl::ErrnoToStatus(errno, absl::StrCat("cannot replace ", m.path));
      }
      if (s.ok()) {
        o.converted = true;
      } else {
        unlink(m.temp.c_str());
        o.why_not = std::string(s.message());
      }
      m.converter.reset();
      m.done = true;
    } else {
      // Not version 6, given up, or never a chunk read (an empty trace).
      o.why_not = m.why_not;
      GiveUp(m, m.why_not);
    }
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace heapsight::record
