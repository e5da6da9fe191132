// analyzer/model/progress.h: how a long analysis reports how far it got. The
// library prints nothing itself; the caller (the command line: a bar on a
// terminal) supplies the listener through AnalyzeOptions::progress.
#ifndef HEAPSIGHT_ANALYZER_MODEL_PROGRESS_H_
#define HEAPSIGHT_ANALYZER_MODEL_PROGRESS_H_

#include <cstdint>

namespace heapsight::analyzer {

class ProgressListener {
 public:
  virtual ~ProgressListener() = default;
  // `done` of `total` units of work are done; called now and then, with
  // `done` never decreasing.
  virtual void Update(uint64_t done, uint64_t total) = 0;
  // The work is over (called once, after the last Update).
  virtual void Finish() = 0;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_PROGRESS_H_
