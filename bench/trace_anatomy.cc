// bench/trace_anatomy.cc: where a trace's bytes go, and what other
// encodings of its records would cost (issue 15, target 5). Not run by any
// test; bench/trace_size_bench.py --anatomy runs it on each heapsight trace.
//
// For one trace (format version 4) it prints:
//  1. the file's bytes and each kind of field of its chunks (hot bytes,
//     stacks, id_refs of the rows; stack-node and other bodies; the time,
//     size and misc columns) compressed alone per chunk at zstd level 3, so
//     the share of each kind shows, and the same records in version 3's
//     layout (five streams) at level 3;
//  2. the whole trace re-encoded with other free references (the rows
//     rebuilt, every chunk recompressed at level 3): the current form, the
//     rank among the thread's live blocks, the freed block's stack plus its
//     rank among that stack's live blocks, and the compact forms that name
//     only the stack (and size) as heaptrack does; the compact stack-only
//     form also at other levels and as per-thread streams;
//  3. the actual chunks at other zstd levels, and compressed as one zstd
//     stream per thread (one context, a flush at each chunk's end) at
//     several levels and windows.
//
// Usage: [TRACE_ANATOMY_RAW=FILE] trace_anatomy TRACE.hst
//            [--quick (parts 1-2) | --compact (no part 3)]
#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
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

struct Chunk {
  ChunkHeader header;
  std::vector<uint8_t> raw;
  uint64_t file_bytes = 0;  // block header + payload
};

size_t Compress(const uint8_t* data, size_t size, int level) {
  if (size == 0) return 0;
  std::vector<uint8_t> out(ZSTD_compressBound(size));
  size_t n = ZSTD_compress(out.data(), out.size(), data, size, level);
  return ZSTD_isError(n) ? size : std::min(n, size);
}
size_t Compress(const std::vector<uint8_t>& v, int level) {
  return Compress(v.data(), v.size(), level);
}

void Put(std::vector<uint8_t>* v, uint64_t x) {
  uint8_t buf[kMaxVarintBytes];
  uint8_t* e = PutVarint(buf, x);
  v->insert(v->end(), buf, e);
}

// A Fenwick tree that grows by appending: counts live items by position.
class GrowingFenwick {
 public:
  // Appends position size() with value v (0 or 1).
  void Append(int v) {
    size_t i = tree_.size() + 1;  // 1-based
    size_t low = i & (~i + 1);
    int64_t s = v + Prefix(i - 1) - Prefix(i - low);
    tree_.push_back(static_cast<int32_t>(s));
    total_ += v;
  }
  void Add(size_t pos, int v) {
    for (size_t i = pos + 1; i <= tree_.size(); i += i & (~i + 1)) tree_[i - 1] += v;
    total_ += v;
  }
  // Live items at positions < pos.
  int64_t Prefix(size_t pos) const {
    int64_t s = 0;
    for (size_t i = pos; i > 0; i -= i & (~i + 1)) s += tree_[i - 1];
    return s;
  }
  int64_t total() const { return total_; }

 private:
  std::vector<int32_t> tree_;
  int64_t total_ = 0;
};

struct BlockInfo {
  uint64_t stack;
  uint64_t size;
  uint32_t site_index;  // position in its site's tree
};

struct Site {
  GrowingFenwick live;
  uint64_t count = 0;     // blocks ever allocated here
  uint64_t unordered = 0; // frees of a block neither the newest nor the oldest here
};

// Free-reference schemes for the rebuilt id column.
enum Scheme { kCurrent, kLiveRank, kSiteRankNewest, kSiteRankOldest, kStackOnly, kStackSize,
              kSchemeCount };
const char* kSchemeNames[kSchemeCount] = {
    "current id_ref (distance / delta, v3)",
    "rank among the thread's live blocks, newest = 0",
    "stack of the block + rank among that stack's live blocks, newest = 0",
    "stack of the block + rank among that stack's live blocks, oldest = 0",
    "compact: stack of the block only (no identity)",
    "compact: stack and size of the block (no identity)",
};

struct ThreadModel {
  GrowingFenwick live;  // by counter
  uint64_t positions = 0;  // counters entered in `live`
  std::unordered_map<uint64_t, Site> sites;  // by stack
};

struct Simulation {
  std::unordered_map<uint64_t, BlockInfo> blocks;  // by id
  std::unordered_map<uint32_t, ThreadModel> threads;
  double random_choice_bits = 0;  // log2(site live) of frees neither newest nor oldest of site
  uint64_t frees = 0, foreign = 0, site_newest = 0, site_oldest = 0, site_other = 0;
};


}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: trace_anatomy TRACE.hst [--quick | --compact]\n");
    return 2;
  }
  bool quick = argc > 2 && std::strcmp(argv[2], "--quick") == 0;
  bool compact_only = argc > 2 && std::strcmp(argv[2], "--compact") == 0;
  auto reader_or = TraceReader::Open(argv[1]);
  if (!reader_or.ok()) {
    std::fprintf(stderr, "%s\n", std::string(reader_or.status().message()).c_str());
    return 1;
  }
  TraceReader& reader = **reader_or;
  // The simulations rebuild the id references of an exact trace; a compact
  // trace (version 5) has none to rebuild.
  if (heapsight::format::HasCompactFrees(reader.header())) {
    std::fprintf(stderr, "%s: a trace with compact frees; trace_anatomy reads exact traces\n",
                 argv[1]);
    return 1;
  }
  std::vector<Chunk> chunks;
  {
    std::vector<uint8_t> raw;
    uint64_t offset;
    while (reader.NextChunk(&raw, &offset)) {
      Chunk c;
      std::memcpy(&c.header, raw.data(), sizeof c.header);
      c.raw = raw;
      c.file_bytes = reader.position() - offset;
      chunks.push_back(std::move(c));
    }
  }
  // TRACE_ANATOMY_RAW=FILE: the decompressed chunks, back to back, for
  // `zstd -b1 -e9 -B131072 FILE` (compression speed per level).
  if (const char* raw_out = std::getenv("TRACE_ANATOMY_RAW"); raw_out != nullptr) {
    if (std::FILE* f = std::fopen(raw_out, "wb"); f != nullptr) {
      for (const Chunk& c : chunks) std::fwrite(c.raw.data(), 1, c.raw.size(), f);
      std::fclose(f);
    }
  }
  // Thread order: by thread, then sequence (stable for equal keys).
  std::vector<size_t> order(chunks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const ChunkHeader &x = chunks[a].header, &y = chunks[b].header;
    return x.thread_index != y.thread_index ? x.thread_index < y.thread_index
                                            : x.sequence < y.sequence;
  });

  uint64_t raw_total = 0, file_blocks = 0;
  for (const Chunk& c : chunks) {
    raw_total += c.raw.size();
    file_blocks += c.file_bytes;
  }
  std::printf("file %llu bytes: %zu chunks, %llu raw bytes, blocks %llu (headers %zu)\n",
              static_cast<unsigned long long>(reader.file_size()), chunks.size(),
              static_cast<unsigned long long>(raw_total),
              static_cast<unsigned long long>(file_blocks), chunks.size() * sizeof(BlockHeader));

  // ---- 1. Kinds of fields compressed alone, per chunk.
  enum Part { kHot, kSizes, kStacks, kIds, kNodes, kOther, kTimes, kMisc, kPartCount };
  const char* part_names[kPartCount] = {"hot bytes (kind+api)", "sizes", "stacks", "id_refs",
                                        "stack-node records", "other records", "time column",
                                        "misc column"};
  double raw_part[kPartCount] = {}, z_part[kPartCount] = {};
  uint64_t count[32] = {};
  for (const Chunk& c : chunks) {
    uint32_t len[1 + kColumnCount];
    std::memcpy(len, c.raw.data() + sizeof(ChunkHeader), sizeof len);
    const uint8_t* p = c.raw.data() + kChunkPreambleBytes;
    const uint8_t* rec_end = p + len[0];
    std::vector<uint8_t> parts[kPartCount];
    auto take = [&](Part k, const uint8_t*& q) {
      const uint8_t* s0 = SkipVarint(q);
      parts[k].insert(parts[k].end(), s0, q);
    };
    while (p < rec_end) {
      uint8_t first = *p++;
      if (first >= kHotByteBase) {
        int tag = first / kHotByteBase;
        ++count[tag];
        parts[kHot].push_back(first);
        if (tag != 1) {
          const uint8_t* q = p;
          uint64_t v = ReadVarint(q);
          take(kIds, p);
          if ((v & 3) == 1) take(kIds, p);
        }
        if (tag != 2) take(kStacks, p);
      } else {
        if (first < 32) ++count[first];
        const uint8_t* s0 = p - 1;
        uint64_t body = ReadVarint(p);
        p += body;
        Part k = first == static_cast<uint8_t>(RecordTag::kStackNode) ? kNodes : kOther;
        parts[k].insert(parts[k].end(), s0, p);
      }
    }
    parts[kTimes].assign(rec_end, rec_end + len[1]);
    parts[kSizes].assign(rec_end + len[1], rec_end + len[1] + len[2]);
    parts[kMisc].assign(rec_end + len[1] + len[2], rec_end + len[1] + len[2] + len[3]);
    for (int k = 0; k < kPartCount; ++k) {
      raw_part[k] += parts[k].size();
      z_part[k] += Compress(parts[k], 3);
    }
  }
  std::printf("\nrecords: alloc %llu, free %llu, realloc %llu, stack nodes %llu\n",
              (unsigned long long)count[1], (unsigned long long)count[2],
              (unsigned long long)count[3], (unsigned long long)count[6]);
  double z_sum = 0;
  for (double z : z_part) z_sum += z;
  std::printf("%-24s %12s %12s %7s\n", "field kind (alone, lvl 3)", "raw", "zstd", "share");
  for (int k = 0; k < kPartCount; ++k) {
    std::printf("%-24s %12.0f %12.0f %6.1f%%\n", part_names[k], raw_part[k], z_part[k],
                100 * z_part[k] / z_sum);
  }
  std::printf("%-24s %12s %12.0f\n", "sum", "", z_sum);

  // ---- 2. Free-reference schemes: rebuild the id column.
  Simulation sim;
  std::vector<double> scheme_total(kSchemeCount, 0), scheme_idcol(kSchemeCount, 0);
  // The compact stack-only form's rebuilt chunks, in file order, for levels
  // and per-thread streams.
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> compact_chunks[2];  // stack; stack+size
  for (size_t oi : order) {
    const Chunk& c = chunks[oi];
    ChunkDecoder dec(c.raw.data(), c.raw.size());
    if (!dec.ok()) {
      std::fprintf(stderr, "chunk: %s\n", dec.error().c_str());
      return 1;
    }
    uint32_t me = c.header.thread_index;
    ThreadModel& tm = sim.threads[me];
    std::vector<uint8_t> idcol[kSchemeCount];
    IdRefState chunk_id_ref{c.header.first_alloc_counter, false};  // current scheme's chunk state
    Record r;
    auto on_free = [&](uint64_t id, uint64_t next_counter) {
      ++sim.frees;
      auto it = sim.blocks.find(id);
      bool own = AllocIdThread(id) == me && it != sim.blocks.end();
      // current
      {
        uint64_t counter = AllocIdCounter(id);
        auto& v = idcol[kCurrent];
        if (AllocIdThread(id) == me && counter < next_counter) {
          Put(&v, OwnIdRef(counter, next_counter, &chunk_id_ref));
        } else {
          Put(&v, (uint64_t{AllocIdThread(id)} << 2) | 1);
          Put(&v, counter);
        }
      }
      if (!own) {
        ++sim.foreign;
        for (int s = kLiveRank; s < kSchemeCount; ++s) {
          Put(&idcol[s], (uint64_t{AllocIdThread(id)} << 2) | 1);
          Put(&idcol[s], AllocIdCounter(id));
        }
        if (it != sim.blocks.end()) {
          ThreadModel& owner = sim.threads[AllocIdThread(id)];
          owner.live.Add(AllocIdCounter(id), -1);
          owner.sites[it->second.stack].live.Add(it->second.site_index, -1);
          sim.blocks.erase(it);
        }
        return;
      }
      const BlockInfo& b = it->second;
      uint64_t counter = AllocIdCounter(id);
      int64_t live_rank = tm.live.total() - tm.live.Prefix(counter + 1);  // newer live blocks
      Put(&idcol[kLiveRank], static_cast<uint64_t>(live_rank) << 1);
      Site& site = tm.sites[b.stack];
      int64_t older = site.live.Prefix(b.site_index);
      int64_t newer = site.live.total() - older - 1;
      Put(&idcol[kSiteRankNewest], b.stack);
      Put(&idcol[kSiteRankNewest], static_cast<uint64_t>(newer));
      Put(&idcol[kSiteRankOldest], b.stack);
      Put(&idcol[kSiteRankOldest], static_cast<uint64_t>(older));
      Put(&idcol[kStackOnly], b.stack << 1);  // bit 0 clear: one varint (rows parse it)
      Put(&idcol[kStackSize], b.stack);
      Put(&idcol[kStackSize], b.size);
      if (newer == 0) {
        ++sim.site_newest;
      } else if (older == 0) {
        ++sim.site_oldest;
      } else {
        ++sim.site_other;
        ++site.unordered;
        sim.random_choice_bits += std::log2(static_cast<double>(site.live.total()));
      }
      tm.live.Add(counter, -1);
      site.live.Add(b.site_index, -1);
      sim.blocks.erase(it);
    };
    while (dec.Next(&r)) {
      if (r.tag == RecordTag::kFree) {
        on_free(r.id, dec.next_alloc_counter());
      } else if (r.tag == RecordTag::kRealloc || r.tag == RecordTag::kAlloc) {
        if (r.tag == RecordTag::kRealloc) on_free(r.old_id, dec.next_alloc_counter() - 1);
        uint64_t counter = AllocIdCounter(r.id);
        Site& site = tm.sites[r.stack];
        BlockInfo b{r.stack, r.size, 0};
        b.site_index = static_cast<uint32_t>(site.count);
        site.live.Append(1);
        ++site.count;
        while (tm.positions < counter) {  // counter gaps (lost chunks): dead positions
          tm.live.Append(0);
          ++tm.positions;
        }
        tm.live.Append(1);
        ++tm.positions;
        sim.blocks[r.id] = b;
      }
    }
    if (!dec.ok()) {
      std::fprintf(stderr, "chunk: %s\n", dec.error().c_str());
      return 1;
    }
    // Rebuild: the same chunk with each scheme's id_refs in its rows.
    uint32_t len[1 + kColumnCount];
    std::memcpy(len, c.raw.data() + sizeof(ChunkHeader), sizeof len);
    for (int sc = 0; sc < kSchemeCount; ++sc) {
      std::vector<uint8_t> rows;
      const uint8_t* p = c.raw.data() + kChunkPreambleBytes;
      const uint8_t* rec_end = p + len[0];
      const uint8_t* ip = idcol[sc].data();
      const uint8_t* ip_end = ip + idcol[sc].size();
      auto copy = [&](const uint8_t*& q) {
        const uint8_t* s0 = SkipVarint(q);
        rows.insert(rows.end(), s0, q);
      };
      // Each scheme's refs: one varint, two for the full form (low bits 01)
      // and for the stack-and-size form.
      auto copy_ref = [&]() {
        const uint8_t* q = ip;
        uint64_t v = ReadVarint(q);
        copy(ip);
        if ((v & 3) == 1 || sc == kSiteRankNewest || sc == kSiteRankOldest || sc == kStackSize) {
          copy(ip);
        }
      };
      while (p < rec_end) {
        uint8_t first = *p++;
        if (first >= kHotByteBase) {
          int tag = first / kHotByteBase;
          rows.push_back(first);
          if (tag != 1) {
            const uint8_t* q = p;
            uint64_t v = ReadVarint(q);
            SkipVarint(p);
            if ((v & 3) == 1) SkipVarint(p);
            copy_ref();
          }
          if (tag != 2) copy(p);  // stack
        } else {
          const uint8_t* s0 = p - 1;
          uint64_t body = ReadVarint(p);
          p += body;
          rows.insert(rows.end(), s0, p);
        }
      }
      if (ip != ip_end) std::fprintf(stderr, "warning: scheme %d refs left over\n", sc);
      std::vector<uint8_t> rebuilt(c.raw.begin(), c.raw.begin() + kChunkPreambleBytes);
      uint32_t new_len = static_cast<uint32_t>(rows.size());
      std::memcpy(rebuilt.data() + sizeof(ChunkHeader), &new_len, 4);
      rebuilt.insert(rebuilt.end(), rows.begin(), rows.end());
      rebuilt.insert(rebuilt.end(), rec_end, c.raw.data() + c.raw.size());
      if (sc == kCurrent && rebuilt != c.raw) {
        std::fprintf(stderr, "warning: current scheme does not rebuild the chunk exactly\n");
      }
      scheme_total[sc] += Compress(rebuilt, 3) + sizeof(BlockHeader);
      scheme_idcol[sc] += Compress(idcol[sc], 3);
      if (sc == kStackOnly || sc == kStackSize) {
        compact_chunks[sc == kStackOnly ? 0 : 1].emplace_back(c.header.thread_index,
                                                             std::move(rebuilt));
      }
    }
  }
  {
    // The same records in version 3's layout (tag, dt, api in the record
    // stream; size, stack, id_ref, alignment/address in four columns).
    double v3 = 64;
    for (const Chunk& c : chunks) {
      uint32_t len[1 + kColumnCount];
      std::memcpy(len, c.raw.data() + sizeof(ChunkHeader), sizeof len);
      const uint8_t* p = c.raw.data() + kChunkPreambleBytes;
      const uint8_t* rec_end = p + len[0];
      const uint8_t* tp = rec_end;
      const uint8_t* sp = rec_end + len[1];
      const uint8_t* mp = rec_end + len[1] + len[2];
      std::vector<uint8_t> rs, col[4];
      auto move = [&](std::vector<uint8_t>& to, const uint8_t*& from) {
        const uint8_t* s0 = SkipVarint(from);
        to.insert(to.end(), s0, from);
      };
      while (p < rec_end) {
        uint8_t first = *p++;
        if (first >= kHotByteBase) {
          int tag = first / kHotByteBase;
          rs.push_back(static_cast<uint8_t>(tag));
          move(rs, tp);
          rs.push_back(first % kHotByteBase);
          if (tag != 1) {
            const uint8_t* q = p;
            uint64_t v = ReadVarint(q);
            move(col[2], p);
            if ((v & 3) == 1) move(col[2], p);
          }
          if (tag == 3) move(col[3], tp);  // dt2
          if (tag != 2) {
            move(col[0], sp);
            move(col[1], p);
            if (tag == 1) move(col[3], mp);  // alignment
            move(col[3], mp);                // address
          }
        } else {
          const uint8_t* s0 = p - 1;
          uint64_t body = ReadVarint(p);
          p += body;
          rs.insert(rs.end(), s0, p);
        }
      }
      std::vector<uint8_t> v(c.raw.begin(), c.raw.begin() + sizeof(ChunkHeader) + 20);
      v.insert(v.end(), rs.begin(), rs.end());
      for (auto& k : col) v.insert(v.end(), k.begin(), k.end());
      v3 += Compress(v, 3) + sizeof(BlockHeader);
    }
    std::printf("\nthe same records in version 3's layout (level 3): %.0f bytes\n", v3);
  }
  std::printf("\nfrees %llu: other thread's or unknown block %llu; of own: newest of its stack "
              "%llu, oldest %llu, neither %llu (log2(stack's live blocks) summed over those: "
              "%.0f bytes)\n",
              (unsigned long long)sim.frees, (unsigned long long)sim.foreign,
              (unsigned long long)sim.site_newest, (unsigned long long)sim.site_oldest,
              (unsigned long long)sim.site_other, sim.random_choice_bits / 8);
  {
    // The stacks whose blocks are freed most out of allocation order (neither
    // FIFO nor LIFO): if that order is a random permutation of the n blocks,
    // any exact encoding needs log2(n!) bits for it.
    std::vector<std::pair<uint64_t, uint64_t>> top;  // unordered frees, stack
    for (auto& [thread, tm2] : sim.threads) {
      for (auto& [stack, site] : tm2.sites) top.emplace_back(site.unordered, stack);
    }
    std::sort(top.rbegin(), top.rend());
    for (size_t i = 0; i < top.size() && i < 3 && top[i].first > 0; ++i) {
      double n = static_cast<double>(top[i].first);
      std::printf("stack %llu: %llu frees out of order; log2(n!) = %.0f bytes\n",
                  (unsigned long long)top[i].second, (unsigned long long)top[i].first,
                  std::lgamma(n + 1) / std::log(2.0) / 8);
    }
  }
  std::printf("%-72s %12s %12s\n", "free reference (whole trace rebuilt, lvl 3)", "trace",
              "id col alone");
  for (int s = 0; s < kSchemeCount; ++s) {
    std::printf("%-72s %12.0f %12.0f\n", kSchemeNames[s], scheme_total[s] + 64,
                scheme_idcol[s]);
  }
  if (quick) return 0;
  std::printf("\n%-44s %12s %12s\n", "compact forms at other settings", "stack", "stack+size");
  for (int level : {3, 9, 19}) {
    double total[2] = {64, 64};
    for (int k = 0; k < 2; ++k) {
      for (auto& [thread, v] : compact_chunks[k]) total[k] += Compress(v, level) + sizeof(BlockHeader);
    }
    std::printf("independent frames, level %-18d %12.0f %12.0f\n", level, total[0], total[1]);
  }
  for (int level : {3, 9, 19}) {
    double total[2] = {64, 64};
    for (int k = 0; k < 2; ++k) {
      std::map<uint32_t, ZSTD_CCtx*> ctx;
      std::vector<uint8_t> out;
      for (auto& [thread, v] : compact_chunks[k]) {
        ZSTD_CCtx*& cc = ctx[thread];
        if (cc == nullptr) {
          cc = ZSTD_createCCtx();
          ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
        }
        out.resize(ZSTD_compressBound(v.size()) + 64);
        ZSTD_outBuffer ob{out.data(), out.size(), 0};
        ZSTD_inBuffer ib{v.data(), v.size(), 0};
        ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_flush);
        total[k] += ob.pos + sizeof(BlockHeader);
      }
      for (auto& [thread, cc] : ctx) ZSTD_freeCCtx(cc);
    }
    std::printf("one stream per thread, level %-15d %12.0f %12.0f\n", level, total[0], total[1]);
  }
  if (compact_only) return 0;

  // ---- 3. zstd levels and per-thread streams on the actual chunks.
  std::printf("\n%-56s %12s\n", "zstd on the actual chunks", "trace");
  for (int level : {1, 3, 6, 9, 12, 15, 19}) {
    double total = 64;
    for (const Chunk& c : chunks) total += Compress(c.raw, level) + sizeof(BlockHeader);
    std::printf("independent frames, level %-30d %12.0f\n", level, total);
  }
  struct StreamCfg {
    int level;
    int window_log;
  };
  for (StreamCfg cfg : {StreamCfg{1, 0}, StreamCfg{3, 0}, StreamCfg{3, 20}, StreamCfg{3, 23},
                        StreamCfg{6, 0}, StreamCfg{9, 0}, StreamCfg{9, 23}, StreamCfg{12, 23}}) {
    std::map<uint32_t, std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)>> ctx;
    double total = 64;
    std::vector<uint8_t> out;
    size_t max_state = 0;
    for (const Chunk& c : chunks) {  // file order: the writer's order
      auto it = ctx.find(c.header.thread_index);
      if (it == ctx.end()) {
        it = ctx.emplace(c.header.thread_index,
                         std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)>(ZSTD_createCCtx(),
                                                                             ZSTD_freeCCtx))
                 .first;
        ZSTD_CCtx_setParameter(it->second.get(), ZSTD_c_compressionLevel, cfg.level);
        if (cfg.window_log != 0) {
          ZSTD_CCtx_setParameter(it->second.get(), ZSTD_c_windowLog, cfg.window_log);
        }
      }
      out.resize(ZSTD_compressBound(c.raw.size()) + 64);
      ZSTD_outBuffer ob{out.data(), out.size(), 0};
      ZSTD_inBuffer ib{c.raw.data(), c.raw.size(), 0};
      ZSTD_compressStream2(it->second.get(), &ob, &ib, ZSTD_e_flush);
      total += ob.pos + sizeof(BlockHeader);
      max_state = std::max(max_state, ZSTD_sizeof_CCtx(it->second.get()));
    }
    std::printf("one stream per thread, level %d, window 2^%-2d (ctx %5zu KiB) %12.0f\n",
                cfg.level, cfg.window_log == 0 ? 0 : cfg.window_log, max_state >> 10, total);
  }
  return 0;
}
