// analyzer/cache/profile_codec.cc: see profile_codec.h. Fields are written
// in declaration order; vectors as a count then their items; the stack trie
// sorted by node, delta-coded, so the encoding of one profile is always the
// same bytes.
#include "analyzer/cache/profile_codec.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "analyzer/cache/byte_codec.h"
#include "analyzer/symbols/symbolizer.h"

namespace heapsight::analyzer::cache {
namespace {

// Bump when the encoding changes in a way the struct sizes do not show.
constexpr int kCodecVersion = 3;  // 2: ProcessProfile::site_series; 3: Totals::compact_frees

constexpr uint64_t kMaxApi = static_cast<uint64_t>(format::Api::kApiLimit) - 1;

void PutStats(ByteWriter& w, const SiteStats& s) {
  for (uint64_t v : {s.alloc_count, s.alloc_bytes, s.live_count, s.live_bytes, s.leaked_count,
                     s.leaked_bytes, s.peak_count, s.peak_bytes, s.temporary_count,
                     s.temporary_bytes, s.inherited_count, s.inherited_bytes}) {
    w.U64(v);
  }
  w.Double(s.alloc_count_estimate);
  w.Double(s.alloc_bytes_estimate);
}

void GetStats(ByteReader& r, SiteStats* s) {
  for (uint64_t* v : {&s->alloc_count, &s->alloc_bytes, &s->live_count, &s->live_bytes,
                      &s->leaked_count, &s->leaked_bytes, &s->peak_count, &s->peak_bytes,
                      &s->temporary_count, &s->temporary_bytes, &s->inherited_count,
                      &s->inherited_bytes}) {
    *v = r.U64();
  }
  s->alloc_count_estimate = r.Double();
  s->alloc_bytes_estimate = r.Double();
}

void PutTotals(ByteWriter& w, const Totals& t) {
  for (uint64_t v : t.allocs_by_api) w.U64(v);
  for (uint64_t v : t.frees_by_api) w.U64(v);
  for (uint64_t v : {t.allocs, t.frees, t.bytes_allocated, t.leaked_bytes, t.leaked_blocks,
                     t.temporary, t.inherited_bytes, t.inherited_blocks, t.peak_bytes,
                     t.peak_blocks, t.peak_time_us, t.failed_allocs, t.bad_frees,
                     t.unmatched_frees, t.lost_events}) {
    w.U64(v);
  }
  w.Bool(t.estimated);
  for (uint64_t v : {t.sample_period, t.sampled_allocs, t.sampled_bytes, t.allocs_error,
                     t.bytes_allocated_error, t.peak_bytes_error, t.leaked_bytes_error}) {
    w.U64(v);
  }
  w.Bool(t.temporary_known);
  w.Bool(t.compact_frees);
}

void GetTotals(ByteReader& r, Totals* t) {
  for (uint64_t& v : t->allocs_by_api) v = r.U64();
  for (uint64_t& v : t->frees_by_api) v = r.U64();
  for (uint64_t* v : {&t->allocs, &t->frees, &t->bytes_allocated, &t->leaked_bytes,
                      &t->leaked_blocks, &t->temporary, &t->inherited_bytes,
                      &t->inherited_blocks, &t->peak_bytes, &t->peak_blocks, &t->peak_time_us,
                      &t->failed_allocs, &t->bad_frees, &t->unmatched_frees, &t->lost_events}) {
    *v = r.U64();
  }
  t->estimated = r.Bool();
  for (uint64_t* v : {&t->sample_period, &t->sampled_allocs, &t->sampled_bytes,
                      &t->allocs_error, &t->bytes_allocated_error, &t->peak_bytes_error,
                      &t->leaked_bytes_error}) {
    *v = r.U64();
  }
  t->temporary_known = r.Bool();
  t->compact_frees = r.Bool();
}

void PutPoints(ByteWriter& w, const std::vector<TimePoint>& points) {
  w.U64(points.size());
  for (const TimePoint& p : points) {
    w.U64(p.time_us);
    w.U64(p.value);
  }
}

void GetPoints(ByteReader& r, std::vector<TimePoint>* points) {
  uint64_t n = r.Count(2);
  points->resize(n);
  for (TimePoint& p : *points) {
    p.time_us = r.U64();
    p.value = r.U64();
  }
}

void PutStrings(ByteWriter& w, const std::vector<std::string>& strings) {
  w.U64(strings.size());
  for (const std::string& s : strings) w.Bytes(s);
}

void GetStrings(ByteReader& r, std::vector<std::string>* strings) {
  uint64_t n = r.Count(1);
  strings->resize(n);
  for (std::string& s : *strings) s = r.Bytes();
}

void PutModule(ByteWriter& w, const Module& m) {
  w.U64(m.id);
  w.Bytes(m.path);
  w.Bytes(m.build_id_hex);
  w.U64(m.load_address);
  w.U64(m.segments.size());
  for (const format::SegmentInfo& s : m.segments) {
    w.U64(s.vaddr);
    w.U64(s.memsz);
    w.U64(s.file_offset);
    w.U64(s.flags);
  }
  w.U64(m.load_time_us);
  w.U64(m.unload_time_us);
}

void GetModule(ByteReader& r, Module* m) {
  m->id = r.U64();
  m->path = r.Bytes();
  m->build_id_hex = r.Bytes();
  m->load_address = r.U64();
  uint64_t n = r.Count(4);
  m->segments.resize(n);
  for (format::SegmentInfo& s : m->segments) {
    s.vaddr = r.U64();
    s.memsz = r.U64();
    s.file_offset = r.U64();
    s.flags = static_cast<uint8_t>(r.Enum(255));
  }
  m->load_time_us = r.U64();
  m->unload_time_us = r.U64();
}

void PutGrowth(ByteWriter& w, const SiteGrowth& g) {
  w.Double(g.bytes_per_second);
  w.Double(g.fit);
  w.Double(g.rise);
  for (uint64_t v : {g.fit_end_us, g.live_at_begin, g.live_max, g.live_at_end}) w.U64(v);
}

void GetGrowth(ByteReader& r, SiteGrowth* g) {
  g->bytes_per_second = r.Double();
  g->fit = r.Double();
  g->rise = r.Double();
  for (uint64_t* v : {&g->fit_end_us, &g->live_at_begin, &g->live_max, &g->live_at_end}) {
    *v = r.U64();
  }
}

void PutLeakClasses(ByteWriter& w, const LeakClassData& d) {
  w.Bool(d.scanned);
  w.U64(d.scan);
  w.U64(static_cast<uint64_t>(d.reason));
  for (uint64_t v : {d.duration_us, d.threads_stopped, d.threads_missed, d.root_bytes}) w.U64(v);
  // Sorted so equal profiles encode to equal bytes.
  std::vector<const std::pair<const std::pair<uint64_t, uint8_t>, LeakClassCounts>*> sites;
  sites.reserve(d.sites.size());
  for (const auto& entry : d.sites) sites.push_back(&entry);
  std::sort(sites.begin(), sites.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  w.U64(sites.size());
  for (const auto* entry : sites) {
    w.U64(entry->first.first);
    w.U64(entry->first.second);
    for (int c = 0; c <= format::kLeakClassCount; ++c) {
      const ClassCounts& counts = entry->second[static_cast<LeakClass>(c)];
      w.U64(counts.bytes);
      w.U64(counts.blocks);
    }
  }
  w.U64(d.errors.size());
  for (const FreeErrorEvent& e : d.errors) {
    w.U64(static_cast<uint64_t>(e.error));
    w.U64(static_cast<uint64_t>(e.action));
    w.U64(static_cast<uint64_t>(e.free_api));
    for (uint64_t v : {e.address, e.free_stack, e.time_us, e.alloc_id}) w.U64(v);
    w.Bool(e.alloc_known);
    w.U64(static_cast<uint64_t>(e.alloc_api));
    w.U64(e.alloc_size);
    w.U64(e.alloc_stack);
  }
}

void GetLeakClasses(ByteReader& r, LeakClassData* d) {
  d->scanned = r.Bool();
  d->scan = r.U64();
  d->reason = static_cast<format::ScanReason>(r.Enum(255));
  for (uint64_t* v : {&d->duration_us, &d->threads_stopped, &d->threads_missed, &d->root_bytes}) {
    *v = r.U64();
  }
  uint64_t n = r.Count(2 + 2 * (format::kLeakClassCount + 1));
  d->sites.reserve(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    uint64_t stack = r.U64();
    uint8_t api = static_cast<uint8_t>(r.Enum(255));
    LeakClassCounts counts;
    for (int c = 0; c <= format::kLeakClassCount; ++c) {
      ClassCounts& cc = counts[static_cast<LeakClass>(c)];
      cc.bytes = r.U64();
      cc.blocks = r.U64();
    }
    if (!d->sites.emplace(std::make_pair(stack, api), counts).second) r.Fail();
  }
  uint64_t errors = r.Count(11);
  d->errors.resize(errors);
  for (FreeErrorEvent& e : d->errors) {
    e.error = static_cast<format::FreeError>(r.Enum(255));
    e.action = static_cast<format::FreeAction>(r.Enum(255));
    e.free_api = static_cast<format::Api>(r.Enum(255));
    for (uint64_t* v : {&e.address, &e.free_stack, &e.time_us, &e.alloc_id}) *v = r.U64();
    e.alloc_known = r.Bool();
    e.alloc_api = static_cast<format::Api>(r.Enum(255));
    e.alloc_size = r.U64();
    e.alloc_stack = r.U64();
  }
}

void PutSiteBuckets(ByteWriter& w, const std::vector<SiteBucket>& buckets) {
  w.U64(buckets.size());
  for (const SiteBucket& b : buckets) {
    w.U64(b.begin_us);
    w.U64(b.live);
    w.U64(b.allocated);
  }
}

void GetSiteBuckets(ByteReader& r, std::vector<SiteBucket>* buckets) {
  buckets->resize(r.Count(3));
  for (SiteBucket& b : *buckets) {
    b.begin_us = r.U64();
    b.live = r.U64();
    b.allocated = r.U64();
  }
}

void PutSiteTimeline(ByteWriter& w, const SiteTimeline& t) {
  w.U64(t.bucket_us);
  w.U64(t.end_us);
  w.U64(t.sites.size());
  for (const SiteSeries& s : t.sites) {
    w.U64(s.site);
    PutSiteBuckets(w, s.buckets);
  }
  PutSiteBuckets(w, t.other);
}

void GetSiteTimeline(ByteReader& r, size_t site_count, SiteTimeline* t) {
  t->bucket_us = r.U64();
  t->end_us = r.U64();
  t->sites.resize(r.Count(2));
  for (SiteSeries& s : t->sites) {
    uint64_t site = r.U64();
    if (site >= site_count) r.Fail();
    s.site = static_cast<uint32_t>(site);
    GetSiteBuckets(r, &s.buckets);
  }
  GetSiteBuckets(r, &t->other);
}

}  // namespace

std::string ProfileSchemaTag() {
  return absl::StrCat("codec", kCodecVersion, ".profile", sizeof(ProcessProfile), ".stats",
                      sizeof(SiteStats), ".site", sizeof(Site), ".totals", sizeof(Totals),
                      ".runtime", sizeof(RuntimeTotals), ".module", sizeof(Module), ".growth",
                      sizeof(SiteGrowth), ".bucket", sizeof(HeapBucket), ".marker",
                      sizeof(Marker), ".leaks", sizeof(LeakClassData), ".error",
                      sizeof(FreeErrorEvent), ".api", static_cast<int>(format::Api::kApiLimit),
                      ".classes", format::kLeakClassCount, ".buckets", kSizeBuckets);
}

void EncodeProfile(const ProcessProfile& p, std::string* out) {
  ByteWriter w;
  w.Bytes(std::string_view(reinterpret_cast<const char*>(&p.header), sizeof p.header));
  w.U64(p.pid);
  w.U64(p.ppid);
  w.Bytes(p.exe);
  PutStrings(w, p.argv);
  w.Bytes(p.parent_trace);
  w.Bool(p.complete);
  w.Bool(p.truncated);
  w.U64(static_cast<uint64_t>(p.end_reason));
  w.I64(p.exit_status);
  w.Bytes(p.exec_path);
  w.U64(p.duration_us);
  w.U64(p.threads);
  w.U64(p.modules.size());
  for (const Module& m : p.modules) PutModule(w, m);
  w.U64(p.sites.size());
  for (const Site& s : p.sites) {
    w.U64(s.stack);
    w.U64(static_cast<uint64_t>(s.api));
    w.U64(static_cast<uint64_t>(s.kind));
    PutStats(w, s.stats);
  }
  PutTotals(w, p.totals);
  for (uint64_t v : {p.runtime_totals.allocs, p.runtime_totals.bytes_allocated,
                     p.runtime_totals.leaked_bytes, p.runtime_totals.leaked_blocks}) {
    w.U64(v);
  }
  for (uint64_t v : p.size_histogram) w.U64(v);
  PutPoints(w, p.heap_timeline);
  w.U64(p.heap_series.bucket_us);
  w.U64(p.heap_series.buckets.size());
  for (const HeapBucket& b : p.heap_series.buckets) {
    for (uint64_t v : {b.begin_us, b.open, b.min, b.max, b.max_time_us, b.close, b.first_us,
                       b.last_us}) {
      w.U64(v);
    }
  }
  w.U64(p.heap_series.end_us);
  PutSiteTimeline(w, p.site_series);
  PutPoints(w, p.rss_timeline);
  w.U64(p.growth.size());
  for (const SiteGrowth& g : p.growth) PutGrowth(w, g);
  w.U64(p.growth_window_begin_us);
  w.U64(p.growth_window_end_us);
  w.U64(p.markers.size());
  for (const Marker& m : p.markers) {
    w.U64(m.time_us);
    w.Bytes(m.name);
    w.U64(m.heap_bytes);
    w.U64(m.heap_blocks);
  }
  PutStrings(w, p.warnings);
  PutLeakClasses(w, p.leak_classes);
  // The stack trie, in node order and delta-coded (nodes are dense ids).
  w.U64(p.stack_nodes.size());
  uint64_t previous = 0;
  p.stack_nodes.ForEach([&](uint64_t node, const StackNode& link) {
    w.U64(node - previous);
    previous = node;
    w.U64(link.parent);
    w.U64(link.ip);
  });
  out->append(w.buffer());
}

absl::StatusOr<ProcessProfile> DecodeProfile(std::string_view data) {
  ByteReader r(data);
  ProcessProfile p;
  std::string header = r.Bytes();
  if (header.size() != sizeof p.header) r.Fail();
  else std::memcpy(&p.header, header.data(), sizeof p.header);
  p.pid = r.U64();
  p.ppid = r.U64();
  p.exe = r.Bytes();
  GetStrings(r, &p.argv);
  p.parent_trace = r.Bytes();
  p.complete = r.Bool();
  p.truncated = r.Bool();
  p.end_reason = static_cast<format::EndReason>(r.Enum(255));
  p.exit_status = r.I64();
  p.exec_path = r.Bytes();
  p.duration_us = r.U64();
  p.threads = r.U64();
  p.modules.resize(r.Count(9));
  for (Module& m : p.modules) GetModule(r, &m);
  p.sites.resize(r.Count(3 + 12 + 16));
  for (Site& s : p.sites) {
    s.stack = r.U64();
    s.api = static_cast<format::Api>(r.Enum(kMaxApi));
    s.kind = static_cast<SiteKind>(r.Enum(static_cast<uint64_t>(SiteKind::kRuntime)));
    GetStats(r, &s.stats);
  }
  GetTotals(r, &p.totals);
  for (uint64_t* v : {&p.runtime_totals.allocs, &p.runtime_totals.bytes_allocated,
                      &p.runtime_totals.leaked_bytes, &p.runtime_totals.leaked_blocks}) {
    *v = r.U64();
  }
  for (uint64_t& v : p.size_histogram) v = r.U64();
  GetPoints(r, &p.heap_timeline);
  p.heap_series.bucket_us = r.U64();
  p.heap_series.buckets.resize(r.Count(8));
  for (HeapBucket& b : p.heap_series.buckets) {
    for (uint64_t* v : {&b.begin_us, &b.open, &b.min, &b.max, &b.max_time_us, &b.close,
                        &b.first_us, &b.last_us}) {
      *v = r.U64();
    }
  }
  p.heap_series.end_us = r.U64();
  GetSiteTimeline(r, p.sites.size(), &p.site_series);
  GetPoints(r, &p.rss_timeline);
  p.growth.resize(r.Count(28));
  for (SiteGrowth& g : p.growth) GetGrowth(r, &g);
  p.growth_window_begin_us = r.U64();
  p.growth_window_end_us = r.U64();
  p.markers.resize(r.Count(4));
  for (Marker& m : p.markers) {
    m.time_us = r.U64();
    m.name = r.Bytes();
    m.heap_bytes = r.U64();
    m.heap_blocks = r.U64();
  }
  GetStrings(r, &p.warnings);
  GetLeakClasses(r, &p.leak_classes);
  uint64_t nodes = r.Count(3);
  uint64_t node = 0;
  for (uint64_t i = 0; i < nodes && r.ok(); ++i) {
    uint64_t delta = r.U64();
    if (i > 0 && delta == 0) r.Fail();  // nodes are distinct
    node += delta;
    uint64_t parent = r.U64();
    uint64_t ip = r.U64();
    p.stack_nodes.Define(node, parent, ip);
  }
  if (!r.ok() || !r.AtEnd()) return absl::DataLossError("malformed analysis cache entry");
  if (!p.growth.empty() && p.growth.size() != p.sites.size()) {
    return absl::DataLossError("analysis cache entry: growth and sites differ in length");
  }
  p.symbolizer = std::make_shared<Symbolizer>(p.modules);
  return p;
}

}  // namespace heapsight::analyzer::cache
