// tests/analyzer/output/self_trace.cc: see self_trace.h.
#include "tests/analyzer/output/self_trace.h"

#include <elf.h>
#include <link.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

#include "format/trace_format.h"
#include "tests/analyzer/test_trace_writer.h"

namespace pprof_fixture {

struct Ips {
  uint64_t leaf_a = 0, build_a = 0, leaf_b = 0, build_b = 0, run = 0;
  int line_allocate = 0, line_make_buffers = 0, line_build_a = 0, line_build_b = 0, line_run = 0;
};

// Each function records the address it returns to: a return address inside
// its caller, on the line of the call, exactly what an unwinder records.
// The leaf functions stand in for "the code that called malloc": their own
// call of Here() plays the allocator call.
__attribute__((noinline)) uint64_t Here() {
  asm volatile("");
  return reinterpret_cast<uint64_t>(__builtin_return_address(0));
}

__attribute__((noinline)) void AllocateWidgets(Ips* ips) {
  ips->line_allocate = __LINE__ + 1;
  ips->leaf_a = Here();
  ips->build_a = reinterpret_cast<uint64_t>(__builtin_return_address(0));
  asm volatile("" ::: "memory");
}

__attribute__((noinline)) void MakeBuffers(Ips* ips) {
  ips->line_make_buffers = __LINE__ + 1;
  ips->leaf_b = Here();
  ips->build_b = reinterpret_cast<uint64_t>(__builtin_return_address(0));
  asm volatile("" ::: "memory");
}

__attribute__((noinline)) void BuildScene(Ips* ips) {
  ips->line_build_a = __LINE__ + 1;
  AllocateWidgets(ips);
  ips->line_build_b = __LINE__ + 1;
  MakeBuffers(ips);
  ips->run = reinterpret_cast<uint64_t>(__builtin_return_address(0));
  asm volatile("" ::: "memory");
}

__attribute__((noinline)) void RunScenario(Ips* ips) {
  ips->line_run = __LINE__ + 1;
  BuildScene(ips);
  asm volatile("" ::: "memory");
}

}  // namespace pprof_fixture

namespace heapsight::testing {
namespace {

struct MainModule {
  uint64_t load_address = 0;
  std::vector<format::SegmentInfo> segments;
  std::vector<uint8_t> build_id;
  bool found = false;
};

int FindMain(struct dl_phdr_info* info, size_t, void* data) {
  auto* m = static_cast<MainModule*>(data);
  if (m->found) return 1;
  m->found = true;  // the first entry is the main program
  m->load_address = info->dlpi_addr;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD) {
      m->segments.push_back({ph.p_vaddr, ph.p_memsz, ph.p_offset, static_cast<uint8_t>(ph.p_flags)});
    } else if (ph.p_type == PT_NOTE) {
      const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
      const char* end = p + ph.p_memsz;
      while (p + sizeof(ElfW(Nhdr)) <= end) {
        const auto* nh = reinterpret_cast<const ElfW(Nhdr)*>(p);
        const char* name = p + sizeof(ElfW(Nhdr));
        const char* desc = name + ((nh->n_namesz + 3) & ~3u);
        if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
          m->build_id.assign(desc, desc + nh->n_descsz);
        }
        p = desc + ((nh->n_descsz + 3) & ~3u);
      }
    }
  }
  return 1;
}

}  // namespace

bool WriteSelfTrace(const std::string& path, SelfTraceInfo* info) {
  pprof_fixture::Ips ips;
  pprof_fixture::RunScenario(&ips);
  MainModule main;
  dl_iterate_phdr(FindMain, &main);
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (!main.found || main.segments.empty() || n <= 0) {
    ADD_FAILURE() << "cannot describe this binary";
    return false;
  }
  info->exe.assign(exe, static_cast<size_t>(n));
  info->line_allocate = ips.line_allocate;
  info->line_make_buffers = ips.line_make_buffers;
  info->line_build_a = ips.line_build_a;
  info->line_build_b = ips.line_build_b;
  info->line_run = ips.line_run;
  info->realtime_ns = 1764300000000000000;

  // One thread (index 1), one chunk.
  TestTraceWriter w(/*pid=*/4242, /*ppid=*/1, /*chunk_capacity=*/1 << 16);
  w.EditHeader([&](format::FileHeader& h) {
    h.start_realtime_ns = info->realtime_ns;
    h.start_monotonic_ns = 1000000000;
  });
  std::string build_id(main.build_id.begin(), main.build_id.end());
  w.Process(1, 0, info->exe, {info->exe});
  w.Module(1, 0, 1, main.load_address, info->exe, build_id, main.segments);
  // Stack trie: 1 = run, 2 = build_a, 3 = leaf_a, 4 = build_b, 5 = leaf_b.
  w.StackNode(1, 1, 0, ips.run);
  w.StackNode(1, 2, 1, ips.build_a);
  w.StackNode(1, 3, 2, ips.leaf_a);
  w.StackNode(1, 4, 1, ips.build_b);
  w.StackNode(1, 5, 4, ips.leaf_b);
  using format::Api;
  uint64_t a0 = w.Alloc(1, 1, Api::kMalloc, 64, 3, 0x1000);  // A#0
  w.Alloc(1, 2, Api::kMalloc, 64, 3, 0x2000);                // A#1
  uint64_t b0 = w.Alloc(1, 3, Api::kNew, 1000, 5, 0x3000);   // B#0
  uint64_t b1 = w.Alloc(1, 4, Api::kNew, 1000, 5, 0x4000);   // B#1
  w.Free(1, 5, b0, Api::kDelete);
  w.Free(1, 6, b1, Api::kDelete);
  w.Alloc(1, 7, Api::kMalloc, 64, 3, 0x5000);  // A#2
  w.Free(1, 8, a0, Api::kFree);
  w.End(1, 9, 0);
  if (!w.WriteFile(path)) {
    ADD_FAILURE() << "cannot write " << path;
    return false;
  }
  return true;
}

int64_t WriteManySitesTrace(const std::string& path, int sites, bool distinct_leaves) {
  pprof_fixture::Ips ips;
  pprof_fixture::RunScenario(&ips);
  const uint64_t pool[5] = {ips.leaf_a, ips.build_a, ips.leaf_b, ips.build_b, ips.run};
  MainModule main;
  dl_iterate_phdr(FindMain, &main);
  char exe_buf[4096];
  ssize_t n = readlink("/proc/self/exe", exe_buf, sizeof exe_buf - 1);
  if (!main.found || n <= 0) return -1;
  std::string exe(exe_buf, static_cast<size_t>(n));

  TestTraceWriter w(/*pid=*/4243, /*ppid=*/0, /*chunk_capacity=*/1 << 20);
  w.EditHeader([](format::FileHeader& h) {
    h.start_realtime_ns = 1764300000000000000;
    h.start_monotonic_ns = 0;
  });
  w.Process(1, 0, exe, {exe});
  std::string build_id(main.build_id.begin(), main.build_id.end());
  w.Module(1, 0, 1, main.load_address, exe, build_id, main.segments);
  uint64_t text_start = 0, text_size = 0;
  for (const format::SegmentInfo& seg : main.segments) {
    if ((seg.flags & PF_X) != 0) {
      text_start = main.load_address + seg.vaddr;
      text_size = seg.memsz;
      break;
    }
  }
  if (distinct_leaves && text_size < 16) return -1;
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> trie;  // (parent, ip) -> node
  uint64_t next_node = 1, time = 0;
  int64_t total = 0;
  for (int i = 0; i < sites; ++i) {
    uint64_t parent = 0;
    int digits = i;
    for (int depth = 0; depth < 8; ++depth, digits /= 5) {
      uint64_t ip = pool[digits % 5];
      if (distinct_leaves && depth == 7) {
        ip = text_start + 1 + (static_cast<uint64_t>(i) * 7919) % (text_size - 1);
      }
      auto [it, inserted] = trie.try_emplace({parent, ip}, next_node);
      if (inserted) {
        ++next_node;
        w.StackNode(1, it->second, parent, ip);
      }
      parent = it->second;
    }
    uint64_t size = static_cast<uint64_t>(i % 512) + 1;
    ++time;
    w.Alloc(1, time, format::Api::kMalloc, size, parent, 0x10000 + 16 * static_cast<uint64_t>(i));
    total += static_cast<int64_t>(size);
  }
  w.End(1, time + 1, 0);
  if (!w.WriteFile(path)) return -1;
  return total;
}

}  // namespace heapsight::testing
