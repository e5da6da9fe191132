// analyzer/output/text_util.h: number and frame formatting shared by the text
// reports (report, leaks, record's summary).
#ifndef HEAPSIGHT_ANALYZER_TEXT_UTIL_H_
#define HEAPSIGHT_ANALYZER_TEXT_UTIL_H_

#include <cstdint>
#include <string>

#include "analyzer/symbols/symbolizer.h"

namespace heapsight::analyzer {

// 1234567 -> "1,234,567".
std::string Thousands(uint64_t n);
// "1,234 bytes"; from 10 KiB up with a binary unit: "1,234,567 bytes (1.2 MiB)".
std::string Bytes(uint64_t n);
// How finely a trace's times were measured: the precise clock's
// microseconds, or the coarse clock's kernel ticks of 1-4 ms
// (format::kFileFlagCoarseClock in the trace header).
enum class ClockResolution { kMicroseconds, kMilliseconds };
ClockResolution ResolutionOf(uint32_t header_flags);

// A duration or a time since the trace began, with no more digits than the
// clock measured: "400 us", "12.345 ms" or "1.235 s" (kMicroseconds);
// "0 ms", "504 ms" or "1.504 s" (kMilliseconds).
std::string Seconds(uint64_t us, ClockResolution resolution = ClockResolution::kMicroseconds);
// One frame compactly: "function (file.c:12)", "function (module+0x12)",
// "module+0x12" or "0xaddr"; file is a basename.
std::string CompactFrame(const SourceFrame& frame, const SymbolizedLocation& loc);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_TEXT_UTIL_H_
