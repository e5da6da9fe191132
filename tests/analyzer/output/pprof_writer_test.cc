// tests/analyzer/output/pprof_writer_test.cc: BuildPprofProfile against every
// structural rule of the pprof format, the gzip file round trip, sampling and
// scale.
#include "analyzer/output/pprof_writer.h"
#include "analyzer/output/folded_stacks.h"
#include "analyzer/output/profile_family.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "analyzer/output/site_metric.h"
#include "tests/analyzer/output/test_profiles.h"

namespace heapsight::analyzer::output {
namespace {

namespace pb = ::perftools::profiles;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Gunzip(const std::string& gz) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char buf[4096];
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
  } while (rc == Z_OK);
  EXPECT_EQ(rc, Z_STREAM_END);
  inflateEnd(&zs);
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string base = dir != nullptr ? dir : "/tmp";
  return base + "/heapsight_pprof_" + std::to_string(getpid()) + "_" + name;
}

// Every structural rule of the pprof format (profile.proto's comments);
// returns "" when the profile is valid.
std::string ValidateProfile(const pb::Profile& p) {
  auto str_ok = [&](int64_t i) { return i >= 0 && i < p.string_table_size(); };
  if (p.string_table_size() == 0 || !p.string_table(0).empty()) return "string_table[0] != \"\"";
  if (p.sample_type_size() == 0) return "no sample types";
  std::set<uint64_t> mapping_ids, location_ids, function_ids;
  for (const pb::Mapping& m : p.mapping()) {
    if (m.id() == 0 || !mapping_ids.insert(m.id()).second) return "bad mapping id";
    if (!str_ok(m.filename()) || !str_ok(m.build_id())) return "bad mapping string";
  }
  for (const pb::Function& f : p.function()) {
    if (f.id() == 0 || !function_ids.insert(f.id()).second) return "bad function id";
    if (!str_ok(f.name()) || !str_ok(f.system_name()) || !str_ok(f.filename())) {
      return "bad function string";
    }
  }
  for (const pb::Location& l : p.location()) {
    if (l.id() == 0 || !location_ids.insert(l.id()).second) return "bad location id";
    if (l.mapping_id() != 0 && mapping_ids.count(l.mapping_id()) == 0) return "bad mapping_id";
    for (const pb::Line& line : l.line()) {
      if (function_ids.count(line.function_id()) == 0) return "bad function_id";
    }
  }
  for (const pb::Sample& s : p.sample()) {
    if (s.value_size() != p.sample_type_size()) return "value count != sample_type count";
    if (s.location_id_size() == 0) return "sample without stack";
    for (uint64_t id : s.location_id()) {
      if (location_ids.count(id) == 0) return "sample has nil location";
    }
    std::set<int64_t> keys;
    for (const pb::Label& l : s.label()) {
      if (!str_ok(l.key()) || !str_ok(l.str()) || !str_ok(l.num_unit())) return "bad label string";
      if (l.str() != 0 && (l.num() != 0 || l.num_unit() != 0)) return "label with str and num";
      if (!keys.insert(l.key()).second) return "label key twice";
    }
  }
  for (int64_t c : p.comment()) {
    if (!str_ok(c)) return "bad comment";
  }
  if (!str_ok(p.drop_frames()) || !str_ok(p.keep_frames()) ||
      !str_ok(p.default_sample_type())) {
    return "bad profile string";
  }
  return "";
}

const std::string& S(const pb::Profile& p, int64_t i) { return p.string_table(static_cast<int>(i)); }

const pb::Location& LocationById(const pb::Profile& p, uint64_t id) {
  for (const pb::Location& l : p.location()) {
    if (l.id() == id) return l;
  }
  ADD_FAILURE() << "no location " << id;
  return p.location(0);
}

const pb::Function& FunctionById(const pb::Profile& p, uint64_t id) {
  for (const pb::Function& f : p.function()) {
    if (f.id() == id) return f;
  }
  ADD_FAILURE() << "no function " << id;
  return p.function(0);
}

// "name file:line" per Line of the location, innermost first.
std::vector<std::string> LocationLines(const pb::Profile& p, uint64_t id) {
  std::vector<std::string> out;
  for (const pb::Line& line : LocationById(p, id).line()) {
    const pb::Function& f = FunctionById(p, line.function_id());
    out.push_back(S(p, f.name()) + " " + S(p, f.filename()) + ":" + std::to_string(line.line()));
  }
  return out;
}

TEST(PprofWriterTest, FollowsEveryFieldRule) {
  absl::StatusOr<pb::Profile> built = BuildPprofProfile(testing::SmallProfile());
  ASSERT_TRUE(built.ok()) << built.status();
  const pb::Profile& p = *built;
  EXPECT_EQ(ValidateProfile(p), "");

  // Go's four heap types first (indices 0..3 as in a Go profile), then the
  // temporaries of an exact trace.
  ASSERT_EQ(p.sample_type_size(), 6);
  std::vector<std::string> types;
  for (const pb::ValueType& vt : p.sample_type()) types.push_back(S(p, vt.type()) + "/" + S(p, vt.unit()));
  EXPECT_THAT(types, ElementsAre("alloc_objects/count", "alloc_space/bytes", "inuse_objects/count",
                                 "inuse_space/bytes", "temporary_objects/count",
                                 "temporary_space/bytes"));
  EXPECT_EQ(S(p, p.period_type().type()), "space");
  EXPECT_EQ(S(p, p.period_type().unit()), "bytes");
  EXPECT_EQ(p.period(), 1);
  EXPECT_EQ(S(p, p.default_sample_type()), "inuse_space");
  EXPECT_EQ(p.time_nanos(), 1764300000123456789);
  EXPECT_EQ(p.duration_nanos(), 2500000000);
  EXPECT_EQ(S(p, p.drop_frames()), kAllocatorFramesRegex);
  ASSERT_GE(p.comment_size(), 2);
  EXPECT_EQ(S(p, p.comment(0)), "heapsight heap profile of /opt/app/app");
  EXPECT_EQ(S(p, p.comment(1)), "inuse = live at end of the trace");

  // Strings are interned: no duplicates.
  std::set<std::string> strings(p.string_table().begin(), p.string_table().end());
  EXPECT_EQ(strings.size(), static_cast<size_t>(p.string_table_size()));

  // Mappings: main executable first, flags by symbolization.
  ASSERT_EQ(p.mapping_size(), 2);
  const pb::Mapping& app = p.mapping(0);
  EXPECT_EQ(S(p, app.filename()), "/opt/app/app");
  EXPECT_EQ(S(p, app.build_id()), "0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(app.memory_start(), 0x555555555000u);
  EXPECT_EQ(app.memory_limit(), 0x555555559000u);
  EXPECT_EQ(app.file_offset(), 0x1000u);
  EXPECT_TRUE(app.has_functions() && app.has_filenames() && app.has_line_numbers() &&
              app.has_inline_frames());
  const pb::Mapping& libc = p.mapping(1);
  EXPECT_FALSE(libc.has_functions() || libc.has_filenames() || libc.has_line_numbers() ||
               libc.has_inline_frames());

  // Samples: A and C merged, D (all zero) dropped.
  ASSERT_EQ(p.sample_size(), 2);
  const pb::Sample& a = p.sample(0);
  EXPECT_THAT(a.value(), ElementsAre(4, 256, 2, 128, 2, 64));
  ASSERT_EQ(a.location_id_size(), 3);
  // Leaf first, inline frames innermost first.
  EXPECT_THAT(LocationLines(p, a.location_id(0)),
              ElementsAre("Vec<int>::grow src/vec.h:42", "fill_vector src/main.cc:12"));
  EXPECT_EQ(LocationById(p, a.location_id(0)).address(), 0x555555555234u);
  EXPECT_EQ(LocationById(p, a.location_id(0)).mapping_id(), app.id());
  EXPECT_THAT(LocationLines(p, a.location_id(1)), ElementsAre("main src/main.cc:30"));
  EXPECT_TRUE(LocationById(p, a.location_id(2)).line().empty());
  EXPECT_EQ(LocationById(p, a.location_id(2)).mapping_id(), libc.id());
  ASSERT_EQ(a.label_size(), 2);
  EXPECT_EQ(S(p, a.label(0).key()), "bytes");
  EXPECT_EQ(a.label(0).num(), 64);
  EXPECT_EQ(S(p, a.label(0).num_unit()), "bytes");
  EXPECT_EQ(S(p, a.label(1).key()), "api");
  EXPECT_EQ(S(p, a.label(1).str()), "malloc");

  const pb::Sample& b = p.sample(1);
  EXPECT_THAT(b.value(), ElementsAre(10, 10000, 0, 0, 4, 4000));
  EXPECT_EQ(b.label(0).num(), 1000);
  EXPECT_EQ(S(p, b.label(1).str()), "operator new(unsigned long)");
  // The shared caller is one Location.
  EXPECT_EQ(b.location_id(1), a.location_id(1));
  EXPECT_EQ(b.location_id(2), a.location_id(2));

  // Functions: deduplicated, system names kept.
  std::set<std::string> names;
  for (const pb::Function& f : p.function()) {
    EXPECT_TRUE(names.insert(S(p, f.name())).second) << S(p, f.name());
    if (S(p, f.name()) == "Vec<int>::grow") {
      EXPECT_EQ(S(p, f.system_name()), "_ZN3VecIiE4growEv");
      EXPECT_EQ(f.start_line(), 40);
    }
    if (S(p, f.name()) == "main") {
      EXPECT_EQ(S(p, f.system_name()), "main");
    }
  }
  // Unused location 4 (only in the dropped sample) is not emitted.
  EXPECT_EQ(names.count("std::vector<int, std::allocator<int> >::reserve"), 0u);
  EXPECT_EQ(p.location_size(), 4);
}

TEST(PprofWriterTest, FileRoundTripIsGzippedAndIdentical) {
  absl::StatusOr<pb::Profile> built = BuildPprofProfile(testing::SmallProfile());
  ASSERT_TRUE(built.ok());
  std::string path = TempPath("roundtrip.pb.gz");
  ASSERT_TRUE(WritePprofFile(*built, path).ok());
  std::string gz = ReadFile(path);
  ASSERT_GE(gz.size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  pb::Profile parsed;
  ASSERT_TRUE(parsed.ParseFromString(Gunzip(gz)));
  EXPECT_EQ(parsed.SerializeAsString(), built->SerializeAsString());
  EXPECT_EQ(ValidateProfile(parsed), "");
  // Deterministic: the same input gives the same bytes.
  absl::StatusOr<pb::Profile> again = BuildPprofProfile(testing::SmallProfile());
  std::string path2 = TempPath("roundtrip2.pb.gz");
  ASSERT_TRUE(WritePprofFile(*again, path2).ok());
  EXPECT_EQ(ReadFile(path2), gz);
  std::remove(path.c_str());
  std::remove(path2.c_str());
}

TEST(PprofWriterTest, UnwritableOutputNamesTheFile) {
  absl::StatusOr<pb::Profile> built = BuildPprofProfile(testing::SmallProfile());
  ASSERT_TRUE(built.ok());
  absl::Status st = WritePprofFile(*built, "/nonexistent-dir/out.pb.gz");
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("/nonexistent-dir/out.pb.gz: cannot write: No such file or directory"));
}

TEST(PprofWriterTest, SampledTraceIsScaledLikeGo) {
  HeapProfile p = testing::SmallProfile();
  p.sample_period = 4096;
  p.samples.resize(1);
  p.samples[0].values = {1, 4096, 1, 4096, 0, 0, 0, 0};
  absl::StatusOr<pb::Profile> built = BuildPprofProfile(p);
  ASSERT_TRUE(built.ok());
  EXPECT_EQ(built->period(), 4096);
  ASSERT_EQ(built->sample_size(), 1);
  EXPECT_THAT(built->sample(0).value(), ElementsAre(1, 6479, 1, 6479));
  // The label is the raw block size.
  EXPECT_EQ(built->sample(0).label(0).num(), 4096);
  // No temporaries: a sampled trace cannot tell them, and says so.
  EXPECT_EQ(built->sample_type_size(), 4);
  bool said = false;
  for (int64_t c : built->comment()) {
    said = said || built->string_table(static_cast<int>(c)).find("no temporary_* values") == 0;
  }
  EXPECT_TRUE(said);
}

TEST(PprofWriterTest, PerAllocationEstimatesAreUsedAsTheyAre) {
  // Two samples of one site: 16 and 4080 bytes. Scaling their totals by
  // the mean size (2048) would say 2 / (1 - exp(-0.5)) = 5 allocations; the
  // per-allocation estimate (1/p(16) + 1/p(4080) = 256.5 + 1.6) is kept.
  HeapProfile p = testing::SmallProfile();
  p.sample_period = 4096;
  p.samples.resize(1);
  p.samples[0].values = {2, 4096, 0, 0, 0, 0, 0, 0};
  p.samples[0].values.alloc_count_estimate = 258;
  p.samples[0].values.alloc_bytes_estimate = 10647;
  absl::StatusOr<pb::Profile> built = BuildPprofProfile(p);
  ASSERT_TRUE(built.ok());
  ASSERT_EQ(built->sample_size(), 1);
  EXPECT_THAT(built->sample(0).value(), ElementsAre(258, 10647, 0, 0));
  EXPECT_EQ(SiteMetricValue(p.samples[0].values, SiteMetric::kAllocCount, 4096), 258);
  EXPECT_EQ(SiteMetricValue(p.samples[0].values, SiteMetric::kAllocBytes, 4096), 10647);
  // Without estimates: Go's scaling of the totals.
  p.samples[0].values.alloc_count_estimate = -1;
  p.samples[0].values.alloc_bytes_estimate = -1;
  EXPECT_EQ(SiteMetricValue(p.samples[0].values, SiteMetric::kAllocCount, 4096), 5);
}

TEST(PprofWriterTest, BadIndicesAreErrorsNotCrashes) {
  HeapProfile p = testing::SmallProfile();
  p.samples[0].locations.push_back(99);
  absl::StatusOr<pb::Profile> built = BuildPprofProfile(p);
  EXPECT_EQ(built.status().code(), absl::StatusCode::kInvalidArgument);

  HeapProfile q = testing::SmallProfile();
  q.locations[1].mapping = 7;
  EXPECT_EQ(BuildPprofProfile(q).status().code(), absl::StatusCode::kInvalidArgument);

  HeapProfile empty;
  absl::StatusOr<pb::Profile> e = BuildPprofProfile(empty);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(ValidateProfile(*e), "");
  EXPECT_EQ(e->sample_size(), 0);
}

TEST(PprofWriterTest, GzipCompressEdgeCases) {
  for (std::string data : {std::string(), std::string("x"), std::string(300000, 'a')}) {
    absl::StatusOr<std::string> gz = GzipCompress(data);
    ASSERT_TRUE(gz.ok());
    EXPECT_EQ(Gunzip(*gz), data);
  }
}

TEST(PprofWriterTest, HundredThousandSitesShareTheirLocationsAndFunctions) {
  // 100k sites, 12 frames each, over a pool of 20k distinct addresses.
  // (Its time is printed, not asserted: timing belongs in bench/.)
  HeapProfile p;
  p.executable = "/bin/big";
  p.mappings.push_back({0x400000, 0x10000000, 0, "/bin/big", "aa", true, false});
  for (uint32_t i = 0; i < 20000; ++i) {
    p.locations.push_back({0x400000 + i * 16u, 0,
                           {{"ns::function_number_" + std::to_string(i % 5000), "",
                             "src/file" + std::to_string(i % 100) + ".cc",
                             static_cast<int64_t>(i % 700), 0}}});
  }
  uint64_t seed = 12345;
  auto next = [&] {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(seed >> 33);
  };
  for (int i = 0; i < 100000; ++i) {
    ProfileSample s;
    for (int k = 0; k < 12; ++k) s.locations.push_back(next() % 20000);
    s.api = "malloc";
    s.values = {i + 1, (i + 1) * 32, 1, 32, 1, 32, 0, 0};
    p.samples.push_back(std::move(s));
  }
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<pb::Profile> built = BuildPprofProfile(p);
  ASSERT_TRUE(built.ok());
  std::string path = TempPath("big.pb.gz");
  ASSERT_TRUE(WritePprofFile(*built, path).ok());
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("100k sites: build + write %.3f s, %zu bytes\n", seconds, ReadFile(path).size());
  EXPECT_EQ(built->sample_size(), 100000);
  // Each address and each (name, file) pair is written once, however many
  // samples name it: 1.2 M frame references reach all 20,000 addresses.
  EXPECT_EQ(built->location_size(), 20000);
  EXPECT_EQ(built->function_size(), 5000);
  EXPECT_EQ(ValidateProfile(*built), "");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace heapsight::analyzer::output

namespace heapsight::analyzer::output {
namespace {

TEST(ProfileFamilyTest, MergedProfileKeepsEveryProcessApart) {
  std::vector<FamilyMember> members(2);
  members[0] = {testing::SmallProfile(), 100, "/bin/sh", "/t/sh.100.hst"};
  members[1] = {testing::SmallProfile(), 101, "/usr/bin/ls", "/t/ls.101.hst"};
  members[1].profile.time_nanos += 1000000000;  // started 1 s later, ran 2.5 s
  absl::StatusOr<HeapProfile> merged = MergeFamilyProfiles(std::move(members));
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->mappings.size(), 4u);
  EXPECT_EQ(merged->duration_nanos, 3500000000);
  absl::StatusOr<perftools::profiles::Profile> p = BuildPprofProfile(*merged);
  ASSERT_TRUE(p.ok()) << p.status();
  // Two samples per process (A+C merged, D dropped), never merged across.
  ASSERT_EQ(p->sample_size(), 4);
  std::vector<int64_t> pids;
  for (const perftools::profiles::Sample& s : p->sample()) {
    ASSERT_EQ(s.label_size(), 4);
    EXPECT_EQ(p->string_table(static_cast<int>(s.label(2).key())), "pid");
    pids.push_back(s.label(2).num());
    EXPECT_EQ(p->string_table(static_cast<int>(s.label(3).str())),
              pids.back() == 100 ? "/bin/sh" : "/usr/bin/ls");
  }
  EXPECT_THAT(pids, ElementsAre(100, 100, 101, 101));
  EXPECT_EQ(FormatFoldedStacks(CollapseProfile(*merged, SiteMetric::kAllocCount)),
            "ls (pid 101);libc.so.6+0x29d90;main;fill_vector;Vec<int>::grow 4\n"
            "ls (pid 101);libc.so.6+0x29d90;main;make_tree 10\n"
            "sh (pid 100);libc.so.6+0x29d90;main;fill_vector;Vec<int>::grow 4\n"
            "sh (pid 100);libc.so.6+0x29d90;main;make_tree 10\n");
}

TEST(ProfileFamilyTest, AnImageThatExecdItselfGetsAFrameOfItsOwn) {
  std::vector<FamilyMember> members(2);
  members[0] = {testing::SmallProfile(), 7, "/usr/bin/make", "/t/make.7.hst"};
  members[1] = {testing::SmallProfile(), 7, "/usr/bin/make", "/t/make.7.1.hst"};
  absl::StatusOr<HeapProfile> merged = MergeFamilyProfiles(std::move(members));
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(FormatFoldedStacks(CollapseProfile(*merged, SiteMetric::kAllocCount)),
            "make (pid 7);libc.so.6+0x29d90;main;fill_vector;Vec<int>::grow 4\n"
            "make (pid 7);libc.so.6+0x29d90;main;make_tree 10\n"
            "make (pid 7) #2;libc.so.6+0x29d90;main;fill_vector;Vec<int>::grow 4\n"
            "make (pid 7) #2;libc.so.6+0x29d90;main;make_tree 10\n");
}

TEST(ProfileFamilyTest, DifferentSamplingPeriodsAreAnError) {
  std::vector<FamilyMember> members(2);
  members[0] = {testing::SmallProfile(), 100, "/bin/sh", "/t/sh.100.hst"};
  members[1] = {testing::SmallProfile(), 101, "/usr/bin/ls", "/t/ls.101.hst"};
  members[1].profile.sample_period = 4096;
  absl::StatusOr<HeapProfile> merged = MergeFamilyProfiles(std::move(members));
  EXPECT_EQ(merged.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(merged.status().message()),
              HasSubstr("/t/ls.101.hst: sampled every 4096 bytes, but /t/sh.100.hst every 1"));
  EXPECT_FALSE(MergeFamilyProfiles({}).ok());
}

}  // namespace
}  // namespace heapsight::analyzer::output
