// analyzer/output/html_timeline.h: the "Heap over time" chart of the HTML
// page (html_report.h), an inline SVG drawn from the trace's bucketed heap
// series (model/heap_timeline.h), never from individual events.
//
// What is drawn, and why it is true:
//  - The heap is a step function: the path has only horizontal and vertical
//    segments (SVG H and V commands). The series is re-bucketed to one
//    bucket per pixel column with the model's own merge rule (min of mins,
//    max of maxes), and each column's envelope is drawn as a vertical line
//    at the time of its maximum, so no peak is lost to down-sampling and the
//    highest point of the path is Totals::peak_bytes at
//    Totals::peak_time_us: the numbers `heapsight report` prints.
//  - The heap has its own y-axis (0 to a round number of B, KiB, MiB or
//    GiB above the peak) with ticks; the x-axis has time ticks (us, ms or s)
//    from the start of the trace to its end.
//  - RSS (kRss samples) is on its own right-hand axis, hidden until its
//    checkbox is ticked (CSS only, works without script), and labelled as
//    including heapsight's own memory: it is the whole process.
//  - Markers from the in-program API (heapsight_marker) are dashed vertical
//    lines with their (escaped) names; the peak is a dot with its numbers.
//
// Elements carry classes and data-* attributes (the axes' tick values, the
// peak's bytes and time) so that tests in a browser can read the geometry
// back and check it against the report.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_HTML_TIMELINE_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_HTML_TIMELINE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "analyzer/model/heap_timeline.h"
#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer::output {

// One pixel column of the chart: the model's buckets whose first change
// falls in [begin_us, end_us), merged. `used` is false for a column with
// no change (the heap stays flat across it).
struct ChartColumn {
  bool used = false;
  HeapBucket envelope;
};

// Re-buckets `series` into `columns` equal columns over [0, end_us).
std::vector<ChartColumn> ColumnsOf(const HeapTimeline& series, uint64_t end_us, size_t columns);

// Round axis ticks: 0, step, 2*step, ... up to `top` >= the maximum.
struct AxisTicks {
  double unit = 1;       // bytes or microseconds per displayed unit
  std::string unit_name; // "B", "KiB", "MiB", "GiB" or "us", "ms", "s"
  double step = 1;       // in units
  double top = 1;        // in units, a multiple of step
};
// Binary byte units, the top at or above `max_bytes` (at least 1 unit).
AxisTicks ByteTicks(uint64_t max_bytes);
// Time units; the ticks stay within [0, end_us] (top <= end).
AxisTicks TimeTicks(uint64_t end_us);
// "12.5 MiB", "300 ms": a tick value in its unit.
std::string TickLabel(double value, const AxisTicks& ticks);

// The page's script for every chart (once per page, after the charts): a
// cursor that follows the mouse, or the arrow keys once the chart has the
// focus, and reads the heap at that moment (the exact bytes of the column
// under it: its range where the heap changed within that pixel). The chart
// is complete without it.
const char* HeapChartScript();

// The chart (a <figure> with the SVG, the RSS toggle and the legend) for
// one process. `id` must be unique in the page and safe in an id attribute
// (the caller makes it, e.g. "p0"); it names the RSS checkbox.
std::string RenderHeapChart(const ProcessProfile& p, std::string_view id);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_HTML_TIMELINE_H_
