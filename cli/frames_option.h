// cli/frames_option.h: the one `--frames` option of report, growth, diff
// and html: how many of a call site's own frames the text shows, default
// kDefaultSiteFrames (analyzer/output/stack_text.h), "all" or 0 for every
// frame.
#ifndef HEAPSIGHT_CLI_FRAMES_OPTION_H_
#define HEAPSIGHT_CLI_FRAMES_OPTION_H_

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "analyzer/output/stack_text.h"

namespace heapsight::analyzer {

// Adds --frames to `cmd`; *frames becomes the number to show (SIZE_MAX for
// "all" or 0) once the command line is parsed.
inline CLI::Option* AddFramesOption(CLI::App* cmd, size_t* frames) {
  *frames = kDefaultSiteFrames;
  return cmd
      ->add_option_function<std::string>(
          "--frames",
          [frames](const std::string& value) {
            size_t n = value == "all" ? 0 : std::stoul(value);  // checked below
            *frames = n == 0 ? SIZE_MAX : n;
          },
          "Frames per call site, counted from the program's own first frame (the library "
          "frames above it are counted, not listed); all or 0: every frame")
      ->check(CLI::IsMember({"all"}) | CLI::NonNegativeNumber)
      ->type_name("N|all")
      ->default_str(std::to_string(kDefaultSiteFrames));
}

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_CLI_FRAMES_OPTION_H_
