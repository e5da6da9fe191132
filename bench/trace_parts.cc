// bench/trace_parts.cc: where the bytes of a trace (exact or compact) go,
// per kind of field, before and after compression, and what other encodings
// of its frees and stack nodes would cost (issue 15, target 5). Not run by
// any test.
//
// 1. The trace as it is: every chunk's fields sorted into parts (hot bytes,
//    allocation stacks, free references, the size column's allocation and
//    free sizes, time and misc columns, kStackNode tag+length / node /
//    parent / ip deltas, kModule and other records); raw bytes, and each
//    part alone compressed per chunk at the level given (default: 9 for a
//    compact trace, 3 for an exact one).
// 2. Variants, each chunk rebuilt from its decoded records and compressed
//    whole at that level, also K consecutive chunks of a thread as one frame
//    (what a chunk K times larger would give). From an exact trace: exact,
//    compact (version 5), and mixed frees (a free of a block among the
//    thread's last 63 allocations by its distance, any other by stack and
//    size). For any trace: kStackNode without its 4-byte body length.
//
// Usage: trace_parts TRACE.hst [--level N]
#include <zstd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/raw_varint.h"
#include "format/chunk_decoder.h"
#include "format/chunk_encoder.h"
#include "format/trace_format.h"
#include "format/trace_reader.h"
#include "format/varint.h"

namespace {

using namespace heapsight::format;  // NOLINT: a benchmark tool
using heapsight::bench::ReadVarint;
using heapsight::bench::SkipVarint;
using Bytes = std::vector<uint8_t>;

size_t Compress(const Bytes& v, int level) {
  if (v.empty()) return 0;
  Bytes out(ZSTD_compressBound(v.size()));
  size_t n = ZSTD_compress(out.data(), out.size(), v.data(), v.size(), level);
  return ZSTD_isError(n) ? v.size() : std::min(n, v.size());
}

void Put(Bytes* v, uint64_t x) {
  uint8_t buf[kMaxVarintBytes];
  uint8_t* e = PutVarint(buf, x);
  v->insert(v->end(), buf, e);
}
void PutS(Bytes* v, int64_t x) { Put(v, ZigZag(x)); }

struct Chunk {
  ChunkHeader header;
  Bytes raw;
  uint64_t file_bytes;
};

enum Part {
  kHot, kAllocStacks, kFreeRefs, kAllocSizes, kFreeSizes, kTimes, kMisc, kNodeHead,
  kNodeIds, kNodeParents, kNodeIps, kModules, kOther, kPartCount
};
const char* kPartNames[kPartCount] = {
    "hot bytes (kind+api)", "allocation stacks", "free refs (id_ref / stack)",
    "allocation sizes", "free sizes (compact)", "time column", "misc column",
    "stack node tag+length", "stack node: node delta", "stack node: parent delta",
    "stack node: ip delta", "kModule records", "other records"};

enum Variant { kAsIs, kCompact, kMixed, kVariantCount };
const char* kVariantNames[kVariantCount] = {
    "as written (exact or compact)", "compact frees (stack, size)",
    "mixed: distance <= 63 by id, else stack+size"};

struct BlockInfo {
  uint64_t stack;
  uint64_t size;
};

struct Rebuilt {
  Bytes chunk;
  Bytes parts[kPartCount];
};

// Rebuilds chunk `c` (records decoded; other records copied) with frees in
// `variant` and, with `bare_nodes`, kStackNode without its body length.
bool Rebuild(const Chunk& c, bool compact_in, Variant variant, bool bare_nodes,
             const std::unordered_map<uint64_t, BlockInfo>& blocks, Rebuilt* out) {
  uint32_t len[1 + kColumnCount];
  std::memcpy(len, c.raw.data() + sizeof(ChunkHeader), sizeof len);
  const uint8_t* rows = c.raw.data() + kChunkPreambleBytes;
  const uint8_t* times = rows + len[0];
  const uint8_t* misc = times + len[1] + len[2];
  ChunkDecoder dec(c.raw.data(), c.raw.size(), compact_in);
  if (!dec.ok()) return false;
  Bytes row, sizes;
  Bytes* parts = out->parts;
  IdRefState id_ref_state{c.header.first_alloc_counter, false};
  uint64_t last_node = 0, last_ip = 0;
  uint64_t next_counter = c.header.first_alloc_counter;
  uint32_t me = c.header.thread_index;
  Record r;
  const uint8_t* p = rows;
  auto add = [&](Part k, const Bytes& field) {
    parts[k].insert(parts[k].end(), field.begin(), field.end());
    row.insert(row.end(), field.begin(), field.end());
  };
  // A size, to its part and to the one size column.
  auto add_size = [&](Part k, uint64_t size) {
    Bytes s;
    Put(&s, size);
    parts[k].insert(parts[k].end(), s.begin(), s.end());
    sizes.insert(sizes.end(), s.begin(), s.end());
  };
  // One free reference (free or realloc's old block) in the variant's form.
  auto free_ref = [&](uint64_t id, uint64_t stack, uint64_t size, uint64_t counter_now) {
    Bytes f;
    bool own = AllocIdThread(id) == me && AllocIdCounter(id) < counter_now;
    bool mixed = !compact_in && variant == kMixed;
    if (mixed && own && counter_now - AllocIdCounter(id) <= 63) {
      Put(&f, (counter_now - AllocIdCounter(id)) << 1);
      add(kFreeRefs, f);
      return;
    }
    if (compact_in || variant == kCompact || mixed) {
      // Named by the block's stack and size (an exact trace's from its
      // allocation); in the mixed form behind a low bit 1.
      if (!compact_in) {
        auto it = blocks.find(id);
        stack = it != blocks.end() ? it->second.stack : 0;
        size = it != blocks.end() ? it->second.size : 0;
      }
      Put(&f, mixed ? stack << 1 | 1 : stack);
      add(kFreeRefs, f);
      add_size(kFreeSizes, size);
      return;
    }
    // The exact id_ref, as the encoder writes it.
    uint64_t counter = AllocIdCounter(id);
    if (own) {
      Put(&f, OwnIdRef(counter, counter_now, &id_ref_state));
    } else {
      Put(&f, (uint64_t{AllocIdThread(id)} << 2) | 1);
      Put(&f, counter);
    }
    add(kFreeRefs, f);
  };
  auto alloc_fields = [&](uint64_t stack, uint64_t size) {
    Bytes f;
    Put(&f, stack);
    add(kAllocStacks, f);
    add_size(kAllocSizes, size);
  };
  while (dec.Next(&r)) {
    uint8_t first = *p;
    if (first >= kHotByteBase) {
      // Advance p over the original row (the decoder read it).
      ++p;
      int tag = first / kHotByteBase;
      if (tag != 1) {
        uint64_t v = 0;
        const uint8_t* q = p;
        v = *q;  // low bits of the first byte decide the full form
        SkipVarint(p);
        if (!compact_in && (v & 3) == 1) SkipVarint(p);
      }
      if (tag != 2) SkipVarint(p);
      row.push_back(first);
      parts[kHot].push_back(first);
      if (r.tag == RecordTag::kFree) {
        free_ref(r.id, r.stack, r.size, next_counter);
      } else if (r.tag == RecordTag::kRealloc) {
        free_ref(r.old_id, r.old_stack, r.old_size, next_counter);
        alloc_fields(r.stack, r.size);
        ++next_counter;
      } else {
        alloc_fields(r.stack, r.size);
        ++next_counter;
      }
      continue;
    }
    const uint8_t* s0 = p;
    ++p;
    p += ReadVarint(p);
    if (r.tag == RecordTag::kStackNode) {
      Bytes head(s0, s0 + (bare_nodes ? 1 : 1 + kBodyLengthBytes)), a, b, d;
      PutS(&a, static_cast<int64_t>(r.stack_node.node - last_node));
      Put(&b, r.stack_node.node - r.stack_node.parent);
      PutS(&d, static_cast<int64_t>(r.stack_node.ip - last_ip));
      last_node = r.stack_node.node;
      last_ip = r.stack_node.ip;
      add(kNodeHead, head);
      add(kNodeIds, a);
      add(kNodeParents, b);
      add(kNodeIps, d);
    } else {
      add(r.tag == RecordTag::kModule ? kModules : kOther, Bytes(s0, p));
    }
  }
  if (!dec.ok()) {
    std::fprintf(stderr, "chunk: %s\n", dec.error().c_str());
    return false;
  }
  parts[kTimes].assign(times, times + len[1]);
  parts[kMisc].assign(misc, misc + len[3]);
  Bytes& o = out->chunk;
  o.assign(c.raw.begin(), c.raw.begin() + kChunkPreambleBytes);
  uint32_t nl[1 + kColumnCount] = {static_cast<uint32_t>(row.size()), len[1],
                                   static_cast<uint32_t>(sizes.size()), len[3]};
  std::memcpy(o.data() + sizeof(ChunkHeader), nl, sizeof nl);
  o.insert(o.end(), row.begin(), row.end());
  o.insert(o.end(), times, times + len[1]);
  o.insert(o.end(), sizes.begin(), sizes.end());
  o.insert(o.end(), misc, misc + len[3]);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: trace_parts TRACE.hst [--level N]\n");
    return 2;
  }
  int level = 0;
  for (int i = 2; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--level") == 0) level = std::atoi(argv[i + 1]);
  }
  auto reader_or = TraceReader::Open(argv[1]);
  if (!reader_or.ok()) {
    std::fprintf(stderr, "%s\n", std::string(reader_or.status().message()).c_str());
    return 1;
  }
  TraceReader& reader = **reader_or;
  bool compact = HasCompactFrees(reader.header());
  if (level == 0) level = compact ? 9 : 3;
  std::vector<Chunk> chunks;
  {
    Bytes raw;
    uint64_t offset;
    while (reader.NextChunk(&raw, &offset)) {
      Chunk c;
      std::memcpy(&c.header, raw.data(), sizeof c.header);
      c.raw = raw;
      c.file_bytes = reader.position() - offset;
      chunks.push_back(std::move(c));
    }
  }
  // Every allocation's stack and size, for the compact forms of an exact
  // trace's frees.
  std::unordered_map<uint64_t, BlockInfo> blocks;
  uint64_t raw_total = 0, file_total = 0, nodes = 0, allocs = 0, frees = 0;
  for (const Chunk& c : chunks) {
    raw_total += c.raw.size();
    file_total += c.file_bytes;
    ChunkDecoder dec(c.raw.data(), c.raw.size(), compact);
    Record r;
    while (dec.Next(&r)) {
      if (r.tag == RecordTag::kAlloc || r.tag == RecordTag::kRealloc ||
          r.tag == RecordTag::kInherited) {
        if (!compact) blocks[r.id] = BlockInfo{r.stack, r.size};
        ++allocs;
      }
      if (r.tag == RecordTag::kFree || r.tag == RecordTag::kRealloc) ++frees;
      if (r.tag == RecordTag::kStackNode) ++nodes;
    }
  }
  std::printf("%s: %s trace, file %llu bytes, %zu chunks, %llu raw bytes; %llu allocations, "
              "%llu frees, %llu stack nodes; level %d\n",
              argv[1], compact ? "compact" : "exact",
              static_cast<unsigned long long>(reader.file_size()), chunks.size(),
              static_cast<unsigned long long>(raw_total),
              static_cast<unsigned long long>(allocs), static_cast<unsigned long long>(frees),
              static_cast<unsigned long long>(nodes), level);

  // ---- 1. Parts of the trace as written.
  double raw_part[kPartCount] = {}, z_part[kPartCount] = {};
  double rebuilt_total = 64;
  bool identical = true;
  for (const Chunk& c : chunks) {
    Rebuilt rb;
    if (!Rebuild(c, compact, kAsIs, false, blocks, &rb)) return 1;
    if (rb.chunk != c.raw) identical = false;
    rebuilt_total += Compress(rb.chunk, level) + sizeof(BlockHeader);
    for (int k = 0; k < kPartCount; ++k) {
      raw_part[k] += rb.parts[k].size();
      z_part[k] += Compress(rb.parts[k], level);
    }
  }
  if (!identical) std::fprintf(stderr, "warning: the rebuilt chunks differ from the trace's\n");
  double z_sum = 0, raw_sum = 0;
  for (int k = 0; k < kPartCount; ++k) {
    z_sum += z_part[k];
    raw_sum += raw_part[k];
  }
  std::printf("\nchunks recompressed at level %d: %.0f bytes (file %llu)\n", level,
              rebuilt_total, static_cast<unsigned long long>(reader.file_size()));
  std::printf("%-30s %12s %7s %12s %7s\n", "part", "raw", "share", "alone, zstd", "share");
  for (int k = 0; k < kPartCount; ++k) {
    std::printf("%-30s %12.0f %6.1f%% %12.0f %6.1f%%\n", kPartNames[k], raw_part[k],
                100 * raw_part[k] / raw_sum, z_part[k], 100 * z_part[k] / z_sum);
  }
  std::printf("%-30s %12.0f %7s %12.0f\n", "sum", raw_sum, "", z_sum);

  // ---- 2. Variants, per chunk and grouped by K chunks of a thread.
  const int kGroups[] = {1, 2, 4, 8, 16};
  std::printf("\n%-50s %8s", "variant (level)", "raw MB");
  for (int g : kGroups) std::printf("  %10s%-2d", "chunks x", g);
  std::printf("\n");
  for (int v = 0; v < kVariantCount; ++v) {
    if (compact && v != kAsIs) continue;
    for (int bare = 0; bare < 2; ++bare) {
      std::unordered_map<uint32_t, std::vector<Bytes>> by_thread;
      double raw = 0;
      for (const Chunk& c : chunks) {
        Rebuilt rb;
        if (!Rebuild(c, compact, static_cast<Variant>(v), bare != 0, blocks, &rb)) return 1;
        raw += rb.chunk.size();
        by_thread[c.header.thread_index].push_back(std::move(rb.chunk));
      }
      std::printf("%-50s %8.2f", (std::string(kVariantNames[v]) +
                                  (bare ? ", bare stack nodes" : "")).c_str(), raw / 1e6);
      for (int g : kGroups) {
        double total = 64;
        for (auto& [thread, list] : by_thread) {
          for (size_t i = 0; i < list.size(); i += g) {
            Bytes joined;
            for (size_t j = i; j < list.size() && j < i + g; ++j) {
              joined.insert(joined.end(), list[j].begin(), list[j].end());
            }
            total += Compress(joined, level) + sizeof(BlockHeader);
          }
        }
        std::printf("  %12.0f", total);
      }
      std::printf("\n");
    }
  }
  return 0;
}
