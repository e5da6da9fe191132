// cli/leak_classification.h: the leak report of a set of traces with each
// trace's reachability classes and free errors (issue 5) applied, as
// `report` and `leaks` print it.
#ifndef HEAPSIGHT_CLI_LEAK_CLASSIFICATION_H_
#define HEAPSIGHT_CLI_LEAK_CLASSIFICATION_H_

#include <utility>
#include <vector>

#include "analyzer/report/leak_classes.h"
#include "analyzer/report/leak_report.h"
#include "cli/command_output.h"

namespace heapsight::analyzer {

// Applies each trace's reachability classes and free errors, collected by
// the analysis pass, to `report`.
inline ClassifiedLeakReport Classify(const std::vector<ProcessProfile>& profiles,
                                     LeakReport report) {
  std::vector<LeakClassData> data;
  for (const ProcessProfile& p : profiles) data.push_back(p.leak_classes);
  return ClassifyLeakReport(std::move(report), Pointers(profiles), data);
}

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_CLI_LEAK_CLASSIFICATION_H_
