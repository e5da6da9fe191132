// cli/record/record_command.cc: the `heapsight record` and
// `heapsight options` subcommands (command-line wiring only; the work is in
// record_session.cc and option_table.cc).
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/record/option_table.h"
#include "cli/record/output_target.h"
#include "cli/record/program_resolver.h"
#include "cli/record/record_session.h"

namespace heapsight::analyzer {

void RegisterRecordCommand(CLI::App& app, int* exit_code) {
  auto request = std::make_shared<record::RecordRequest>();
  CLI::App* rec = app.add_subcommand(
      "record",
      "Run a program under the preload and write its trace(s): record [OPTIONS] -- PROGRAM ...");
  rec->add_option("-o,--output", request->output,
                  "Trace file (pattern: %p pid, %e executable name, %% a '%'), or a directory "
                  "to write heapsight.%e.%p.hst in; default heapsight.%e.%p.hst in the current "
                  "directory. Keep %p when PROGRAM forks.")
      ->type_name("PATTERN");
  rec->add_flag("-q,--quiet", request->quiet,
                "No messages from heapsight (trace list, leak summary, preload warnings)");
  rec->add_option("--option", request->options,
                  "Set a HEAPSIGHT_* option for this run, e.g. --option max-depth=32 "
                  "(repeatable; names below)")
      ->type_name("NAME=VALUE")
      ->allow_extra_args(false);
  rec->add_option("--leak-exitcode", request->leak_exitcode,
                  "Exit with N when PROGRAM exited with status 0 and unsuppressed leaks remain "
                  "(a failing PROGRAM keeps its own status)")
      ->type_name("N")
      ->check(CLI::Range(0, 255));
  rec->add_option("--suppressions", request->suppressions,
                  "LeakSanitizer-style suppressions file (leak:PATTERN lines) for the summary")
      ->check(CLI::ExistingFile);
  rec->add_option("--heap-limit", request->heap_limit,
                  "Make allocations fail (NULL/ENOMEM, std::bad_alloc) once the live heap would "
                  "pass SIZE, e.g. 64M (K/M/G suffixes); sets HEAPSIGHT_HEAP_LIMIT")
      ->type_name("SIZE")
      ->check([](const std::string& v) -> std::string {
        size_t digits = v.find_first_not_of("0123456789");
        std::string suffix = digits == std::string::npos ? "" : v.substr(digits);
        for (const char* ok : {"", "K", "M", "G", "T", "k", "m", "g", "t", "KB", "MB", "GB",
                               "KiB", "MiB", "GiB", "B"}) {
          if (digits != 0 && suffix == ok) return "";
        }
        return "expected a size such as 64M (bytes with an optional K, M or G suffix)";
      });
  // Issue 19: a dormant start (HEAPSIGHT_START=paused); the program says
  // its pid, `heapsight attach PID` starts a trace.
  rec->add_flag_callback(
      "--paused", [request] { request->options.push_back("START=paused"); },
      "Start PROGRAM dormant (HEAPSIGHT_START=paused): no trace until `heapsight attach PID`, "
      "until `heapsight detach PID`");
  // Issue 15 target 5: frees name the block's stack and size, not the
  // block (trace format version 5; docs/trace-format.md, "Compact frees").
  rec->add_flag_callback(
      "--compact", [request] { request->options.push_back("COMPACT_FREES=1"); },
      "Compact frees (HEAPSIGHT_COMPACT_FREES=1): each free names its block's stack and size; "
      "per-call-site counts and bytes stay exact, lifetimes and temporaries become "
      "approximate. Up to 19x smaller traces where blocks are freed out of allocation order");
  // Issue 15: frees name their address, the analyzer pairs them (trace
  // format version 6; docs/trace-format.md, "Address frees").
  rec->add_option("--pairing", request->pairing,
                  "How frees are paired with allocations (HEAPSIGHT_PAIRING): table (the "
                  "default: the program keeps a table of its live blocks), address (each free "
                  "names its address; the program keeps 2 bytes per 16 bytes of heap instead; "
                  "exact traces only; see --convert-traces) or auto (address frees paired in "
                  "this process while the program runs, so the traces are version 4, as "
                  "--pairing=address --convert-traces; table mode with sampling, --compact, "
                  "--paused, --serve, --rotate-*, or fewer than 2 CPUs)")
      ->type_name("MODE")
      ->check([](const std::string& v) -> std::string {
        return v == "auto" || v == "table" || v == "address" ? ""
                                                             : "expected auto, table or address";
      });
  rec->add_flag("--convert-traces", request->convert_address_traces,
                "With --pairing=address: pair the frees in this process while the program runs "
                "and leave version-4 traces (as `heapsight convert` does, fork children after the "
                "exit; not with --serve or --rotate-*): every later command reads them at a table trace's cost. "
                "It pays where the program is slow per event (python: 1.22-1.41x plain against "
                "1.60-1.78x in table mode); on event-dense programs the pairing lags, and what "
                "it cannot finish within --convert-wait of the exit stays version 6. Sets HEAPSIGHT_FLUSH_MS=250 unless it is set (the threads' "
                "chunks are merged by time, 1 s behind the newest)");
  rec->add_option("--convert-wait", request->convert_wait,
                  "With --convert-traces: how long the conversion may go on after the program "
                  "exits: auto (a tenth of the program's run, at least 0.1 s), all (until every "
                  "trace is converted) or SECONDS. A trace whose rest would take longer stays "
                  "version 6 (every command reads it; `heapsight convert` converts it later)")
      ->type_name("WAIT")
      ->check([](const std::string& v) -> std::string {
        return record::ConvertWaitUs(v, 0).has_value() ? "" : "expected auto, all or seconds";
      });
  rec->add_flag_callback(
      "--no-leak-summary", [request] { request->leak_summary = false; },
      "Do not print the leak summary (the trace list is still printed)");
  rec->add_option("--serve", request->serve,
                  "Analyze the traces while they are written and serve them over HTTP at ADDR: "
                  "Go's /debug/pprof/heap and /debug/pprof/allocs (go tool pprof reads them), "
                  "/metrics (Prometheus), /debug/heapsight/leaks (a leak scan now, JSON). ADDR is "
                  ":PORT (loopback), HOST:PORT (anyone who can reach HOST:PORT sees the program's "
                  "call stacks and heap), or a unix socket path")
      ->type_name("ADDR");
  rec->add_flag("--no-trace", request->no_trace,
                "With --serve: keep no trace: stream, analyze, serve, discard (disk use stays "
                "bounded by what is not analyzed yet)");
  rec->add_option("--rotate-size", request->rotate_size,
                  "Keep each trace as segments <name>.1.hst, <name>.2.hst, ... of about SIZE "
                  "each (e.g. 256M; K, M, G suffixes); each segment reads alone")
      ->type_name("SIZE");
  rec->add_option("--rotate-time", request->rotate_time,
                  "Start a new segment every DURATION (e.g. 90s, 15m, 6h, 1d)")
      ->type_name("DURATION");
  rec->add_option("--rotate-keep", request->rotate_keep,
                  "With --rotate-*: keep only the newest N segments of each trace")
      ->type_name("N");
  rec->add_option("PROGRAM", request->command, "The program to trace, then its arguments")
      ->type_name("[ARGS...]")
      ->required();
  // Everything from PROGRAM on belongs to PROGRAM, '-' options included.
  rec->positionals_at_end();
  rec->footer(
      "Exit status: PROGRAM's, or 128+N if it was killed by signal N; 127 PROGRAM not found;\n"
      "126 PROGRAM not executable, statically linked or not a 64-bit program of this machine\n"
      "(LD_PRELOAD cannot trace it); 125 heapsight itself failed (preload not found, output\n"
      "directory not writable); 2 usage error (bad option or --option value).\n"
      "SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are forwarded to PROGRAM.\n"
      "\n"
      "HEAPSIGHT_* options (--option NAME=VALUE, or set in the environment):\n" +
      record::OptionsText());
  rec->callback([request, exit_code] { *exit_code = record::RunRecordSession(*request); });

  auto markdown = std::make_shared<bool>(false);
  CLI::App* opts = app.add_subcommand(
      "options", "List the HEAPSIGHT_* options of the preload (the table behind --option)");
  opts->add_flag("--markdown", *markdown, "Print docs/options.md");
  opts->callback([markdown, exit_code] {
    std::string text = *markdown ? record::OptionsMarkdown() : record::OptionsText();
    std::fputs(text.c_str(), stdout);
    *exit_code = 0;
  });
}

}  // namespace heapsight::analyzer
