// analyzer/output/pprof_writer.cc: see pprof_writer.h.
#include "analyzer/output/pprof_writer.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "analyzer/output/heap_unsampling.h"
#include "analyzer/output/output_file.h"

namespace heapsight::analyzer::output {
namespace {

namespace pb = ::perftools::profiles;

// Builds one Profile, interning strings and deduplicating functions,
// locations and samples as they are added.
class ProfileBuilder {
 public:
  ProfileBuilder() { Str(""); }  // string_table[0] must be ""

  int64_t Str(std::string_view s) {
    auto [it, inserted] = strings_.try_emplace(std::string(s), 0);
    if (inserted) {
      it->second = profile_.string_table_size();
      profile_.add_string_table(std::string(s));
    }
    return it->second;
  }

  pb::Profile& profile() { return profile_; }

  uint64_t AddMapping(const ProfileMapping& m) {
    pb::Mapping* out = profile_.add_mapping();
    uint64_t id = static_cast<uint64_t>(profile_.mapping_size());
    out->set_id(id);
    out->set_memory_start(m.start);
    out->set_memory_limit(m.limit);
    out->set_file_offset(m.file_offset);
    out->set_filename(Str(m.path));
    out->set_build_id(Str(m.build_id));
    out->set_has_functions(m.symbolized);
    out->set_has_filenames(m.symbolized);
    out->set_has_line_numbers(m.symbolized);
    out->set_has_inline_frames(m.symbolized && m.has_inline_frames);
    return id;
  }

  uint64_t AddFunction(const SourceFrame& f) {
    const std::string& system_name = f.system_name.empty() ? f.function : f.system_name;
    // Length-prefixed fields: no separator can be forged by a name.
    std::string key = absl::StrCat(f.function.size(), ":", f.function, system_name.size(), ":",
                                   system_name, f.file.size(), ":", f.file, f.start_line);
    auto [it, inserted] = functions_.try_emplace(std::move(key), 0);
    if (inserted) {
      pb::Function* out = profile_.add_function();
      it->second = static_cast<uint64_t>(profile_.function_size());
      out->set_id(it->second);
      out->set_name(Str(f.function));
      out->set_system_name(Str(system_name));
      out->set_filename(Str(f.file));
      out->set_start_line(f.start_line);
    }
    return it->second;
  }

  uint64_t AddLocation(uint64_t mapping_id, const ProfileLocation& loc) {
    std::vector<uint64_t> function_ids;
    function_ids.reserve(loc.frames.size());
    std::string key = absl::StrCat(mapping_id, ":", loc.address);
    for (const SourceFrame& f : loc.frames) {
      function_ids.push_back(AddFunction(f));
      absl::StrAppend(&key, ":", function_ids.back(), "/", f.line);
    }
    auto [it, inserted] = locations_.try_emplace(std::move(key), 0);
    if (inserted) {
      pb::Location* out = profile_.add_location();
      it->second = static_cast<uint64_t>(profile_.location_size());
      out->set_id(it->second);
      out->set_mapping_id(mapping_id);
      out->set_address(loc.address);
      for (size_t i = 0; i < loc.frames.size(); ++i) {
        pb::Line* line = out->add_line();
        line->set_function_id(function_ids[i]);
        line->set_line(loc.frames[i].line);
      }
    }
    return it->second;
  }

  // Adds a sample, or adds its values to an earlier one with the same
  // stack and labels.
  void AddSample(const std::vector<uint64_t>& location_ids, const std::vector<int64_t>& values,
                 std::string_view api, int64_t block_size, const SampleProcess& process) {
    std::string key;
    key.reserve(location_ids.size() * 4 + api.size() + 24);
    for (uint64_t id : location_ids) absl::StrAppend(&key, id, ",");
    // The api has no '|' (format::ApiName); the pid ends the key.
    absl::StrAppend(&key, "|", std::string(api), "|", block_size, "|", process.pid);
    auto [it, inserted] = samples_.try_emplace(std::move(key), 0);
    if (!inserted) {
      pb::Sample* s = profile_.mutable_sample(it->second);
      for (size_t i = 0; i < values.size(); ++i) {
        s->set_value(static_cast<int>(i), SaturatingAdd(s->value(static_cast<int>(i)), values[i]));
      }
      return;
    }
    it->second = profile_.sample_size();
    pb::Sample* s = profile_.add_sample();
    for (uint64_t id : location_ids) s->add_location_id(id);
    for (int64_t v : values) s->add_value(v);
    if (block_size > 0) {
      pb::Label* label = s->add_label();
      label->set_key(Str("bytes"));
      label->set_num(block_size);
      label->set_num_unit(Str("bytes"));
    }
    if (!api.empty()) {
      pb::Label* label = s->add_label();
      label->set_key(Str("api"));
      label->set_str(Str(api));
    }
    if (process.pid != 0) {  // a process family: which process
      pb::Label* pid = s->add_label();
      pid->set_key(Str("pid"));
      pid->set_num(process.pid);
      if (!process.executable.empty()) {
        pb::Label* exe = s->add_label();
        exe->set_key(Str("executable"));
        exe->set_str(Str(process.executable));
      }
    }
  }

 private:
  static int64_t SaturatingAdd(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
  }

  pb::Profile profile_;
  absl::flat_hash_map<std::string, int64_t> strings_;
  absl::flat_hash_map<std::string, uint64_t> functions_;
  absl::flat_hash_map<std::string, uint64_t> locations_;
  absl::flat_hash_map<std::string, int> samples_;
};

void AddValueType(ProfileBuilder& b, pb::ValueType* vt, std::string_view type,
                  std::string_view unit) {
  vt->set_type(b.Str(type));
  vt->set_unit(b.Str(unit));
}

}  // namespace

absl::StatusOr<pb::Profile> BuildPprofProfile(const HeapProfile& profile) {
  ProfileBuilder b;
  pb::Profile& out = b.profile();
  AddValueType(b, out.add_sample_type(), "alloc_objects", "count");
  AddValueType(b, out.add_sample_type(), "alloc_space", "bytes");
  AddValueType(b, out.add_sample_type(), "inuse_objects", "count");
  AddValueType(b, out.add_sample_type(), "inuse_space", "bytes");
  const int64_t period = profile.sample_period > 1 ? profile.sample_period : 1;
  // Temporary allocations need every call of a thread (site_metric.h):
  // exact traces only. After Go's four, so their indices stay 0..3.
  const bool temporaries = period == 1;
  if (temporaries) {
    AddValueType(b, out.add_sample_type(), "temporary_objects", "count");
    AddValueType(b, out.add_sample_type(), "temporary_space", "bytes");
  }
  AddValueType(b, out.mutable_period_type(), "space", "bytes");
  out.set_period(period);
  out.set_default_sample_type(b.Str("inuse_space"));
  out.set_time_nanos(profile.time_nanos);
  out.set_duration_nanos(profile.duration_nanos);
  out.set_drop_frames(b.Str(kAllocatorFramesRegex));
  std::string header = "heapsight heap profile";
  if (!profile.executable.empty()) absl::StrAppend(&header, " of ", profile.executable);
  out.add_comment(b.Str(header));
  if (!profile.moment.empty()) {
    out.add_comment(b.Str(absl::StrCat("inuse = live at ", profile.moment)));
  }
  if (period > 1) {
    out.add_comment(b.Str(absl::StrCat("sampled every ", period,
                                       " bytes on average; values are scaled estimates")));
    out.add_comment(b.Str("no temporary_* values: a sampled trace does not record the calls "
                          "between samples"));
  } else {
    out.add_comment(b.Str("temporary = freed by the allocating thread before its next "
                          "allocation or free"));
  }
  for (const std::string& c : profile.comments) out.add_comment(b.Str(c));

  std::vector<uint64_t> mapping_ids;
  mapping_ids.reserve(profile.mappings.size());
  for (const ProfileMapping& m : profile.mappings) mapping_ids.push_back(b.AddMapping(m));

  // Locations are converted lazily: only those some kept sample uses.
  std::vector<uint64_t> location_ids(profile.locations.size(), 0);
  auto location_id = [&](uint32_t index) -> absl::StatusOr<uint64_t> {
    if (index >= profile.locations.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sample names location ", index, " of ", profile.locations.size()));
    }
    if (location_ids[index] != 0) return location_ids[index];
    const ProfileLocation& loc = profile.locations[index];
    uint64_t mapping_id = 0;
    if (loc.mapping >= 0) {
      if (static_cast<size_t>(loc.mapping) >= mapping_ids.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "location ", index, " names mapping ", loc.mapping, " of ", mapping_ids.size()));
      }
      mapping_id = mapping_ids[static_cast<size_t>(loc.mapping)];
    }
    location_ids[index] = b.AddLocation(mapping_id, loc);
    return location_ids[index];
  };

  std::vector<uint64_t> stack;
  std::vector<int64_t> values;
  for (const ProfileSample& s : profile.samples) {
    const SiteValues& v = s.values;
    ScaledSample alloc = ScaleAllocs(v, period);
    ScaledSample inuse = ScaleHeapSample(v.inuse_count, v.inuse_bytes, period);
    values = {alloc.count, alloc.bytes, inuse.count, inuse.bytes};
    if (temporaries) {
      values.push_back(v.temporary_count);
      values.push_back(v.temporary_bytes);
    }
    if (std::all_of(values.begin(), values.end(), [](int64_t x) { return x == 0; })) continue;
    stack.clear();
    for (uint32_t index : s.locations) {
      absl::StatusOr<uint64_t> id = location_id(index);
      if (!id.ok()) return id.status();
      stack.push_back(*id);
    }
    int64_t block_size = v.alloc_count > 0 ? v.alloc_bytes / v.alloc_count : 0;
    b.AddSample(stack, values, s.api, block_size, s.process);
  }
  return std::move(out);
}

absl::StatusOr<std::string> GzipCompress(std::string_view data) {
  z_stream zs{};
  // windowBits 15 + 16: gzip wrapper with a zeroed header (mtime 0).
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    return absl::InternalError("zlib: deflateInit2 failed");
  }
  std::string out;
  char buf[1 << 16];
  size_t pos = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    // zlib counts in uInt: feed at most 1 GiB at a time.
    size_t chunk = std::min<size_t>(data.size() - pos, size_t{1} << 30);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + pos));
    zs.avail_in = static_cast<uInt>(chunk);
    const bool last = pos + chunk == data.size();
    do {
      zs.next_out = reinterpret_cast<Bytef*>(buf);
      zs.avail_out = sizeof buf;
      rc = deflate(&zs, last ? Z_FINISH : Z_NO_FLUSH);
      if (rc == Z_STREAM_ERROR) break;
      if (rc == Z_BUF_ERROR) rc = Z_OK;  // no progress possible: needs more input
      out.append(buf, sizeof buf - zs.avail_out);
    } while (zs.avail_out == 0 || (last && rc == Z_OK));
    pos += chunk;
    if (rc == Z_STREAM_ERROR) break;
    if (last && rc != Z_STREAM_END) rc = Z_STREAM_ERROR;
  }
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return absl::InternalError(absl::StrCat("zlib: deflate failed: ", rc));
  return out;
}

absl::StatusOr<std::string> EncodePprof(const pb::Profile& profile) {
  std::string raw;
  if (!profile.SerializeToString(&raw)) {
    return absl::InternalError("cannot serialize the profile");
  }
  return GzipCompress(raw);
}

absl::Status WritePprofFile(const pb::Profile& profile, const std::string& path) {
  absl::StatusOr<std::string> gz = EncodePprof(profile);
  if (!gz.ok()) return absl::InternalError(absl::StrCat(path, ": ", gz.status().message()));
  return WriteFileContents(path, *gz);
}

}  // namespace heapsight::analyzer::output
