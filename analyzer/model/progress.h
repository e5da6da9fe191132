// analyzer/model/progress.h: a one-line progress bar on stderr for long analyses.
// Callers decide whether to show it (only when stderr is a terminal).
#ifndef HEAPSIGHT_ANALYZER_PROGRESS_H_
#define HEAPSIGHT_ANALYZER_PROGRESS_H_

#include <cstdint>
#include <cstdio>
#include <string>

namespace heapsight::analyzer {

class ProgressBar {
 public:
  ProgressBar(std::FILE* out, uint64_t total, std::string label)
      : out_(out), total_(total == 0 ? 1 : total), label_(std::move(label)) {}
  // Redraws when the percentage changed.
  void Update(uint64_t done) {
    int percent = static_cast<int>(done >= total_ ? 100 : done * 100 / total_);
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
  // Clears the line.
  void Finish() {
    if (last_percent_ < 0) return;
    std::fprintf(out_, "\r%*s\r", static_cast<int>(label_.size()) + 50, "");
    std::fflush(out_);
  }

 private:
  std::FILE* out_;
  uint64_t total_;
  std::string label_;
  int last_percent_ = -1;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_PROGRESS_H_
