// tests/cli/cli_test_util.h: helpers shared by the end-to-end tests of the
// profile commands (pprof, collapse, flamegraph): the built binary, and
// `go tool pprof` run offline in a private HOME.
#ifndef HEAPSIGHT_TESTS_CLI_CLI_TEST_UTIL_H_
#define HEAPSIGHT_TESTS_CLI_CLI_TEST_UTIL_H_

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "tests/support/run_traced.h"

namespace heapsight::testing {

inline std::string Heapsight() { return BuildPath("cli/heapsight"); }

// Runs the built `heapsight` with `args`.
inline RunResult RunHeapsight(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {Heapsight()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunPlain(argv);
}

// `go` on the PATH, or "" (tests that need it skip).
inline std::string FindGo() {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    std::string candidate = std::string(dir) + "/go";
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// `go tool pprof ARGS` with HOME, PPROF_TMPDIR and GOCACHE in `scratch`.
inline RunResult GoPprof(const std::string& go, const std::string& scratch,
                         const std::vector<std::string>& args) {
  std::vector<std::string> argv = {go, "tool", "pprof"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunPlain(argv, {{"HOME", scratch},
                         {"PPROF_TMPDIR", scratch},
                         {"GOCACHE", scratch + "/gocache"},
                         {"PPROF_BINARY_PATH", scratch + "/none"}});
}

}  // namespace heapsight::testing

#endif  // HEAPSIGHT_TESTS_CLI_CLI_TEST_UTIL_H_
