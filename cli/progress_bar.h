// cli/progress_bar.h: a one-line progress bar on stderr for long analyses
// (AnalyzeOptions::progress), shown only when stderr is a terminal and only
// once an analysis has run for a second (HEAPSIGHT_PROGRESS_AFTER_MS
// changes that delay; docs/cli.md), so quick commands print nothing extra.
// Every trace-reading command takes one: AnalyzeTraces() (command_output.h)
// and the profile commands' LoadOne().
#ifndef HEAPSIGHT_CLI_PROGRESS_BAR_H_
#define HEAPSIGHT_CLI_PROGRESS_BAR_H_

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "analyzer/model/progress.h"

namespace heapsight::analyzer {

class ProgressBar : public ProgressListener {
 public:
  // A bar that draws nothing before `delay` has passed since its creation.
  ProgressBar(std::FILE* out, std::string label,
              std::chrono::milliseconds delay = std::chrono::milliseconds(0))
      : out_(out), label_(std::move(label)), show_after_(std::chrono::steady_clock::now() + delay) {}

  // A bar on stderr if stderr is a terminal, else null (no progress). It
  // appears after 1 s, or after HEAPSIGHT_PROGRESS_AFTER_MS milliseconds.
  static std::unique_ptr<ProgressBar> ForStderr(std::string label) {
    if (isatty(STDERR_FILENO) == 0) return nullptr;
    std::chrono::milliseconds delay(1000);
    if (const char* env = std::getenv("HEAPSIGHT_PROGRESS_AFTER_MS"); env != nullptr) {
      char* end = nullptr;
      long ms = std::strtol(env, &end, 10);
      if (end != env && *end == '\0' && ms >= 0) delay = std::chrono::milliseconds(ms);
    }
    return std::make_unique<ProgressBar>(stderr, std::move(label), delay);
  }

  // Redraws when the percentage changed (once the delay has passed).
  void Update(uint64_t done, uint64_t total) override {
    if (!shown_) {
      if (std::chrono::steady_clock::now() < show_after_) return;
      shown_ = true;
    }
    if (total == 0) total = 1;
    int percent = static_cast<int>(done >= total ? 100 : done * 100 / total);
    if (percent == last_percent_) return;
    last_percent_ = percent;
    constexpr int kWidth = 40;
    char bar[kWidth + 1];
    int filled = percent * kWidth / 100;
    for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
    bar[kWidth] = '\0';
    std::fprintf(out_, "\r%s [%s] %3d%%", label_.c_str(), bar, percent);
    std::fflush(out_);
  }
  // Clears the line; the bar can then show the next analysis.
  void Finish() override {
    if (last_percent_ < 0) return;
    std::fprintf(out_, "\r%*s\r", static_cast<int>(label_.size()) + 50, "");
    std::fflush(out_);
    last_percent_ = -1;
  }

 private:
  std::FILE* out_;
  std::string label_;
  int last_percent_ = -1;
  std::chrono::steady_clock::time_point show_after_;
  bool shown_ = false;  // the delay has passed (checked until then only)
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_CLI_PROGRESS_BAR_H_
