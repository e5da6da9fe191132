// cli/convert_command.cc: `heapsight convert`, an address-frees trace
// (version 6, `record --pairing=address`) rewritten as the version-4 trace
// table mode writes, so that every later command reads it at version 4's
// cost (analyzer/model/pairing_converter.h).
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "analyzer/model/pairing_converter.h"
#include "cli/commands.h"
#include "cli/diagnostics.h"

namespace heapsight::analyzer {

void RegisterConvertCommand(CLI::App& app, int* exit_code) {
  struct Args {
    std::string trace;
    std::string out;
    int level = 3;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* convert = app.add_subcommand(
      "convert",
      "Rewrite an address-frees trace (version 6, record --pairing=address) as a version-4 "
      "trace: frees name their blocks' ids, so report, leaks and the other commands read it "
      "at a table-mode trace's cost");
  convert->add_option("TRACE", args->trace, "The version-6 trace")->required();
  convert->add_option("-o,--output", args->out, "The version-4 trace to create (must not exist)")
      ->required();
  convert->add_option("--zstd-level", args->level, "zstd level of the blocks (0: raw)")
      ->check(CLI::Range(0, 19));
  convert->add_flag("-q,--quiet", args->quiet, "Print nothing but errors");
  convert->callback([args, exit_code] {
    PairingConversionStats stats;
    absl::Status s = ConvertAddressTrace(args->trace, args->out, args->level, &stats);
    if (!s.ok()) {
      // A trace that cannot be read is bad input (3); a trace that is not
      // one to convert, or an output that cannot be made, a failure (1).
      const bool bad_input = s.code() == absl::StatusCode::kDataLoss ||
                             s.code() == absl::StatusCode::kNotFound ||
                             s.code() == absl::StatusCode::kInvalidArgument ||
                             s.code() == absl::StatusCode::kOutOfRange;
      *exit_code = bad_input ? FailInput(s) : Fail(s);
      return;
    }
    *exit_code = 0;
    if (stats.truncated) {
      PrintWarning(absl::StrCat(args->trace,
                                " ends inside a block (the process was killed while writing it): "
                                "converted up to its last whole block"));
    }
    if (args->quiet) return;
    const AddressPairingStats& p = stats.pairing;
    std::fprintf(stderr,
                 "heapsight: %s: %llu chunks, %llu records -> %s: %llu chunks, %llu bytes\n",
                 args->trace.c_str(), static_cast<unsigned long long>(stats.chunks_in),
                 static_cast<unsigned long long>(stats.records_in), args->out.c_str(),
                 static_cast<unsigned long long>(stats.chunks_out),
                 static_cast<unsigned long long>(stats.bytes_out));
    if (p.forced != 0 || p.unknown_frees != 0 || p.phantom_frees != 0) {
      std::fprintf(stderr,
                   "heapsight: warning: %llu events could not be put in order (%llu frees of no "
                   "live block dropped, %llu frees that were never recorded added)\n",
                   static_cast<unsigned long long>(p.forced),
                   static_cast<unsigned long long>(p.unknown_frees),
                   static_cast<unsigned long long>(p.phantom_frees));
    }
  });
}

}  // namespace heapsight::analyzer
