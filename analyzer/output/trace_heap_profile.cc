// analyzer/output/trace_heap_profile.cc: see trace_heap_profile.h.
#include "analyzer/output/trace_heap_profile.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "analyzer/output/attach_window.h"
#include "analyzer/output/heap_unsampling.h"
#include "analyzer/symbols/symbol_names.h"
#include "analyzer/symbols/symbolizer.h"
#include "format/trace_format.h"

namespace heapsight::analyzer::output {
namespace {

constexpr uint8_t kPfX = 1;  // PF_X

int64_t ToInt64(uint64_t v) {
  return v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : static_cast<int64_t>(v);
}

// The module that is the main executable: the one named like the process's
// executable, else the first module recorded (the main program comes first
// in the loader's list), or null.
const Module* MainModule(const ProcessProfile& trace, const std::vector<Module>& modules) {
  if (!trace.exe.empty()) {
    for (const Module& m : modules) {
      if (m.path == trace.exe) return &m;
    }
  }
  return modules.empty() ? nullptr : &modules.front();
}

class Builder {
 public:
  Builder(const ProcessProfile& trace, HeapProfile& out) : trace_(trace), out_(out) {}

  // Mapping index for `module`'s segment containing `address` (the first
  // executable segment when `address` is 0), created on first use.
  int32_t MappingFor(const Module* module, uint64_t address) {
    int segment = -1;
    for (size_t i = 0; i < module->segments.size(); ++i) {
      const format::SegmentInfo& s = module->segments[i];
      uint64_t start = module->load_address + s.vaddr;
      if (address == 0 ? (s.flags & kPfX) != 0 : (address >= start && address - start < s.memsz)) {
        segment = static_cast<int>(i);
        break;
      }
    }
    auto key = std::make_pair(module, segment);
    auto [it, inserted] = mappings_.try_emplace(key, static_cast<int32_t>(out_.mappings.size()));
    if (!inserted) return it->second;
    ProfileMapping m;
    m.path = module->path.empty() && module == main_ ? trace_.exe : module->path;
    m.build_id = module->build_id_hex;
    m.symbolized = true;
    m.has_inline_frames = true;
    if (segment >= 0) {
      const format::SegmentInfo& s = module->segments[static_cast<size_t>(segment)];
      m.start = module->load_address + s.vaddr;
      m.limit = m.start + s.memsz;
      m.file_offset = s.file_offset;
    } else {
      // No segment recorded for this address: the whole module.
      m.start = module->load_address;
      m.limit = module->load_address;
      for (const format::SegmentInfo& s : module->segments) {
        m.limit = std::max(m.limit, module->load_address + s.vaddr + s.memsz);
      }
      if (address != 0) m.limit = std::max(m.limit, address + 1);
    }
    out_.mappings.push_back(std::move(m));
    return it->second;
  }

  uint32_t LocationFor(const SymbolizedLocation& loc) {
    auto [it, inserted] =
        locations_.try_emplace(loc.address, static_cast<uint32_t>(out_.locations.size()));
    if (!inserted) return it->second;
    ProfileLocation out;
    out.address = loc.address;
    if (loc.module != nullptr) out.mapping = MappingFor(loc.module, loc.address);
    for (const analyzer::SourceFrame& f : loc.frames) {
      SourceFrame frame;
      if (f.function.empty()) {
        frame.function = UnknownFrameName(loc);
      } else {
        frame.function = BareFunctionName(f.function);
        if (frame.function != f.function) frame.system_name = f.function;
      }
      frame.file = f.file;
      frame.line = f.line;
      out.frames.push_back(std::move(frame));
    }
    if (out.frames.empty()) out.frames.push_back({UnknownFrameName(loc), "", "", 0, 0});
    out_.locations.push_back(std::move(out));
    return it->second;
  }

  // A pseudo location for sites whose stack is empty after dropping the
  // allocator frames (pprof wants every sample to have a stack).
  uint32_t NoStackLocation() {
    if (no_stack_ < 0) {
      no_stack_ = static_cast<int64_t>(out_.locations.size());
      out_.locations.push_back({0, -1, {{"[no stack]", "", "", 0, 0}}});
    }
    return static_cast<uint32_t>(no_stack_);
  }

  // A pseudo location at the root of a stack the preload cut at its depth
  // cap (HEAPSIGHT_MAX_DEPTH), one per number of missing frames.
  uint32_t CutLocation(const StackCut& cut) {
    auto [it, inserted] =
        cut_locations_.try_emplace(cut.missing, static_cast<uint32_t>(out_.locations.size()));
    if (inserted) {
      out_.locations.push_back({0, -1, {{CutFrameName(cut), "", "", 0, 0}}});
    }
    return it->second;
  }

  void SetMain(const Module* main) {
    main_ = main;
    if (main != nullptr) MappingFor(main, 0);
  }

 private:
  const ProcessProfile& trace_;
  HeapProfile& out_;
  const Module* main_ = nullptr;
  absl::flat_hash_map<std::pair<const Module*, int>, int32_t> mappings_;
  absl::flat_hash_map<uint64_t, uint32_t> locations_;
  int64_t no_stack_ = -1;
  absl::flat_hash_map<uint64_t, uint32_t> cut_locations_;  // missing frames -> location
};


}  // namespace

std::string CutFrameName(const StackCut& cut) {
  if (cut.missing == 0) return "[... more frames not recorded]";
  return absl::StrCat("[... ", cut.missing, " more frames not recorded]");
}

absl::StatusOr<HeapProfile> HeapProfileFromTrace(const ProcessProfile& trace,
                                                 const TraceHeapProfileOptions& options) {
  if (trace.symbolizer == nullptr) {
    return absl::FailedPreconditionError(trace.trace_path + ": trace has no symbolizer");
  }
  Symbolizer& symbolizer = *trace.symbolizer;
  HeapProfile out;
  out.executable = trace.exe;
  out.time_nanos = ToInt64(trace.header.start_realtime_ns);
  constexpr uint64_t kMaxMicros = std::numeric_limits<int64_t>::max() / 1000;
  out.duration_nanos = trace.duration_us > kMaxMicros ? std::numeric_limits<int64_t>::max()
                                                      : ToInt64(trace.duration_us * 1000);
  if ((trace.header.flags & format::kFileFlagSampled) != 0) {
    out.sample_period = ToInt64(trace.header.sample_period_bytes);
  }
  out.moment = options.moment;
  if (trace.truncated) out.comments.push_back("the trace was cut short (truncated file)");
  if (std::string window = AttachWindowText(trace); !window.empty()) {
    out.comments.push_back(window);
  }

  Builder builder(trace, out);
  builder.SetMain(MainModule(trace, symbolizer.modules()));
  if (out.mappings.empty() && !trace.exe.empty()) {
    // No module records at all: still name the executable (pprof's "File:").
    ProfileMapping m;
    m.path = trace.exe;
    m.symbolized = true;
    out.mappings.push_back(std::move(m));
  }

  for (const Site& site : trace.sites) {
    if (site.kind == SiteKind::kRuntime && !options.include_runtime) continue;
    ProfileSample sample;
    std::vector<const SymbolizedLocation*> stack =
        symbolizer.SymbolizeStack(trace.StackIps(site.stack));
    sample.locations.reserve(stack.size());
    for (const SymbolizedLocation* loc : stack) {
      if (loc != nullptr) sample.locations.push_back(builder.LocationFor(*loc));
    }
    if (StackCut cut = trace.StackCutOf(site.stack); cut.cut) {
      sample.locations.push_back(builder.CutLocation(cut));
    }
    if (sample.locations.empty()) sample.locations.push_back(builder.NoStackLocation());
    const char* api = format::ApiName(site.api);
    sample.api = api != nullptr ? api : "";
    const SiteStats& s = site.stats;
    sample.values.alloc_count = ToInt64(s.alloc_count);
    sample.values.alloc_bytes = ToInt64(s.alloc_bytes);
    sample.values.inuse_count = ToInt64(s.live_count);
    sample.values.inuse_bytes = ToInt64(s.live_bytes);
    sample.values.leaked_count = ToInt64(s.leaked_count);
    sample.values.leaked_bytes = ToInt64(s.leaked_bytes);
    sample.values.peak_count = ToInt64(s.peak_count);
    sample.values.peak_bytes = ToInt64(s.peak_bytes);
    sample.values.temporary_count = ToInt64(s.temporary_count);
    sample.values.temporary_bytes = ToInt64(s.temporary_bytes);
    if (out.sample_period > 1) {
      sample.values.alloc_count_estimate = TruncateSaturating(std::round(s.alloc_count_estimate));
      sample.values.alloc_bytes_estimate = TruncateSaturating(std::round(s.alloc_bytes_estimate));
    }
    out.samples.push_back(std::move(sample));
  }
  return out;
}

}  // namespace heapsight::analyzer::output
