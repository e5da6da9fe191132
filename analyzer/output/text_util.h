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
// A duration: "400 us", "12.345 ms" or "1.235 s".
std::string Seconds(uint64_t us);
// One frame compactly: "function (file.c:12)", "function (module+0x12)",
// "module+0x12" or "0xaddr"; file is a basename.
std::string CompactFrame(const SourceFrame& frame, const SymbolizedLocation& loc);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_TEXT_UTIL_H_
