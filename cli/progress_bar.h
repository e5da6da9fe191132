// cli/progress_bar.h: a one-line progress bar on stderr for long analyses
// (AnalyzeOptions::progress), shown only when stderr is a terminal.
#ifndef HEAPSIGHT_CLI_PROGRESS_BAR_H_
#define HEAPSIGHT_CLI_PROGRESS_BAR_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "analyzer/model/progress.h"

namespace heapsight::analyzer {

class ProgressBar : public ProgressListener {
 public:
  ProgressBar(std::FILE* out, std::string label) : out_(out), label_(std::move(label)) {}

  // A bar on stderr if stderr is a terminal, else null (no progress).
  static std::unique_ptr<ProgressBar> ForStderr(std::string label) {
    if (isatty(STDERR_FILENO) == 0) return nullptr;
    return std::make_unique<ProgressBar>(stderr, std::move(label));
  }

  // Redraws when the percentage changed.
  void Update(uint64_t done, uint64_t total) override {
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
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_CLI_PROGRESS_BAR_H_
