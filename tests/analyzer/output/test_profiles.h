// tests/analyzer/output/test_profiles.h: hand-built HeapProfiles shared by the output
// format tests.
#ifndef HEAPSIGHT_TESTS_OUTPUT_TEST_PROFILES_H_
#define HEAPSIGHT_TESTS_OUTPUT_TEST_PROFILES_H_

#include "analyzer/output/heap_profile.h"

namespace heapsight::testing {

// Mappings: 0 = /opt/app/app (main, symbolized, inline frames),
//           1 = /lib/libc.so.6 (not symbolized).
// Locations: 0 = leaf in app: Vec<int>::grow inlined into fill_vector;
//            1 = caller `main` in app; 2 = unsymbolized libc address;
//            3 = `make_tree` in app; 4 = `std::vector<int, std::allocator<int> >::reserve`.
// Samples (leaf first):
//   A [0,1,2]  malloc  2 x 64 B, inuse 1 x 64 B, leaked 1 x 64, peak 2 x 128,
//                      temporary 1 x 32 B
//   B [3,1,2]  new     10 x 1000 B, inuse 0, temporary 4 x 4000 B
//   C [0,1,2]  malloc  2 x 64 B again (same stack, api, size: merges with A)
//   D [4,1,2]  malloc  all zero (dropped)
inline analyzer::output::HeapProfile SmallProfile() {
  using analyzer::output::HeapProfile;
  using analyzer::output::ProfileLocation;
  using analyzer::output::ProfileMapping;
  using analyzer::output::ProfileSample;
  using analyzer::output::SourceFrame;
  HeapProfile p;
  p.executable = "/opt/app/app";
  p.time_nanos = 1764300000123456789;
  p.duration_nanos = 2500000000;
  p.moment = "end of the trace";
  ProfileMapping app;
  app.start = 0x555555554000 + 0x1000;
  app.limit = 0x555555554000 + 0x5000;
  app.file_offset = 0x1000;
  app.path = "/opt/app/app";
  app.build_id = "0123456789abcdef0123456789abcdef01234567";
  app.symbolized = true;
  app.has_inline_frames = true;
  p.mappings.push_back(app);
  ProfileMapping libc;
  libc.start = 0x7ffff7c28000;
  libc.limit = 0x7ffff7dbd000;
  libc.file_offset = 0x28000;
  libc.path = "/lib/x86_64-linux-gnu/libc.so.6";
  libc.build_id = "fedcba";
  p.mappings.push_back(libc);

  ProfileLocation leaf{0x555555555234, 0, {}};
  leaf.frames.push_back({"Vec<int>::grow", "_ZN3VecIiE4growEv", "src/vec.h", 42, 40});
  leaf.frames.push_back({"fill_vector", "_Z11fill_vectorv", "src/main.cc", 12, 10});
  p.locations.push_back(leaf);
  p.locations.push_back({0x555555555400, 0, {{"main", "", "src/main.cc", 30, 25}}});
  p.locations.push_back({0x7ffff7c29d90, 1, {}});
  p.locations.push_back({0x555555555300, 0, {{"make_tree", "_Z9make_treev", "src/main.cc", 20, 18}}});
  p.locations.push_back({0x555555555350, 0,
                         {{"std::vector<int, std::allocator<int> >::reserve", "", "vector", 7, 0}}});

  ProfileSample a;
  a.locations = {0, 1, 2};
  a.api = "malloc";
  a.values = {2, 128, 1, 64, 1, 64, 2, 128, 1, 32};
  p.samples.push_back(a);
  ProfileSample b;
  b.locations = {3, 1, 2};
  b.api = "operator new(unsigned long)";
  b.values = {10, 10000, 0, 0, 0, 0, 3, 3000, 4, 4000};
  p.samples.push_back(b);
  ProfileSample c = a;
  p.samples.push_back(c);
  ProfileSample d;
  d.locations = {4, 1, 2};
  d.api = "malloc";
  p.samples.push_back(d);
  return p;
}

}  // namespace heapsight::testing

#endif  // HEAPSIGHT_TESTS_OUTPUT_TEST_PROFILES_H_
