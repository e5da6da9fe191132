// format/chunk_decoder.cc: decoding of chunk records. See chunk_decoder.h.
#include "format/chunk_decoder.h"

#include <algorithm>
#include <cstring>

namespace heapsight::format {
namespace {

// Caps for untrusted counts and lengths.
constexpr size_t kMaxStringBytes = 1 << 20;
constexpr uint64_t kMaxSegments = 4096;
constexpr uint64_t kMaxArgs = 1 << 16;

// The fast path needs this many bytes of record stream after a hot record's
// first byte (the longest, kRealloc: a two-varint id_ref and a stack); the
// columns are checked by FastBudget().
constexpr ptrdiff_t kVarint = kMaxVarintBytes;
constexpr ptrdiff_t kFastRowBytes = 3 * kVarint;

// Sets the fields of `r` that a hot record of h's kind sets (the others keep
// their values).
void CopyHotFields(const HotRecord& h, bool compact, Record* r) {
  r->tag = h.tag;
  r->api = h.api;
  r->time_us = h.time_us;
  r->id = h.id;
  switch (h.tag) {
    case RecordTag::kFree:
      if (compact) {
        r->stack = h.stack;
        r->size = h.size;
      }
      break;
    case RecordTag::kAlloc:
      r->alignment = h.alignment;
      r->size = h.size;
      r->stack = h.stack;
      r->address = h.address;
      break;
    default:  // kRealloc
      r->old_id = h.old_id;
      r->old_stack = h.old_stack;
      r->old_size = h.old_size;
      r->time2_us = h.time2_us;
      r->size = h.size;
      r->stack = h.stack;
      r->address = h.address;
      break;
  }
}

}  // namespace

ChunkDecoder::ChunkDecoder(const uint8_t* chunk, size_t size, bool compact_frees,
                           bool address_frees)
    : base_(chunk), size_(size), compact_(compact_frees), address_(address_frees) {
  if (size < kChunkPreambleBytes) {
    error_ = "chunk of " + std::to_string(size) + " bytes is shorter than its header";
    return;
  }
  std::memcpy(&header_, chunk, sizeof header_);
  time_us_ = header_.base_time_us;
  next_counter_ = header_.first_alloc_counter;
  last_freed_ = header_.first_alloc_counter;
  uint32_t lengths[1 + kColumnCount];
  std::memcpy(lengths, chunk + sizeof(ChunkHeader), sizeof lengths);
  uint64_t total = kChunkPreambleBytes;
  for (uint32_t l : lengths) total += l;
  if (total != size) {
    error_ = "chunk stream lengths add up to " + std::to_string(total) + " bytes, not " +
             std::to_string(size);
    return;
  }
  pos_ = chunk + kChunkPreambleBytes;
  end_ = pos_ + lengths[0];
  const uint8_t* p = end_;
  for (int i = 0; i < kColumnCount; ++i) {
    columns_[i].pos = p;
    p += lengths[1 + i];
    columns_[i].end = p;
  }
}

bool ChunkDecoder::Fail(const char* what) {
  size_t offset = static_cast<size_t>(pos_ - base_);
  pos_ = end_;
  fast_records_ = fast_frees_ = 0;  // the fast path reads nothing more
  error_ = std::string("malformed ") + what + " record at chunk offset " + std::to_string(offset);
  return false;
}

bool ChunkDecoder::ReadVarint(uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= end_) break;
    uint8_t byte = *pos_++;
    if (shift == 63 && byte > 1) break;  // would overflow 64 bits
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  pos_ = end_;
  return false;
}

bool ChunkDecoder::ReadSignedVarint(int64_t* v) {
  uint64_t u;
  if (!ReadVarint(&u)) return false;
  *v = UnZigZag(u);
  return true;
}

bool ChunkDecoder::ReadByte(uint8_t* v) {
  if (pos_ >= end_) return false;
  *v = *pos_++;
  return true;
}

bool ChunkDecoder::ReadBytes(const uint8_t** data, size_t* len, size_t max_len) {
  uint64_t n;
  if (!ReadVarint(&n)) return false;
  if (n > max_len || n > static_cast<uint64_t>(end_ - pos_)) {
    pos_ = end_;
    return false;
  }
  *data = pos_;
  *len = static_cast<size_t>(n);
  pos_ += n;
  return true;
}

bool ChunkDecoder::ReadColumn(int column, uint64_t* v) {
  Column& c = columns_[column];
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && c.pos < c.end; shift += 7) {
    uint8_t byte = *c.pos++;
    if (shift == 63 && byte > 1) break;  // would overflow 64 bits
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  c.pos = c.end;
  return false;
}

bool ChunkDecoder::ReadIdRef(uint64_t* id) {
  uint64_t v;
  if (!ReadVarint(&v)) return false;
  return DecodeIdRef(
      v, [this](uint64_t* counter) { return ReadVarint(counter); }, next_counter_,
      header_.thread_index, &last_freed_, id);
}

bool ChunkDecoder::Next(Record* out) {
  if (!error_.empty()) return false;
  if (pos_ >= end_) {
    for (const Column& c : columns_) {
      if (c.pos != c.end) {
        error_ = "malformed chunk: its columns hold more fields than its records use";
        return false;
      }
    }
    return false;
  }
  uint8_t tag_byte = *pos_++;
  Record& r = *out;
  if (!r.module.segments.empty()) r.module.segments.clear();
  if (!r.block_classes.ids.empty()) r.block_classes.ids.clear();
  if (!r.block_classes.stacks.empty()) {
    r.block_classes.stacks.clear();
    r.block_classes.sizes.clear();
  }
  if (!r.process.argv.empty()) r.process.argv.clear();
  if (tag_byte >= kHotByteBase) {  // kAlloc, kFree, kRealloc with their api
    // The fast path, for this record alone (it reads the hot byte itself).
    --pos_;
    if (DecodeHotRecords(1, [&r, this](const HotRecord& h) { CopyHotFields(h, compact_, &r); })) {
      return true;
    }
    ++pos_;
    RecordTag tag = static_cast<RecordTag>(tag_byte / kHotByteBase);
    uint8_t api = tag_byte % kHotByteBase;
    if (api >= static_cast<uint8_t>(Api::kApiLimit)) return Fail("hot");
    r.tag = tag;
    r.api = static_cast<Api>(api);
    fast_records_ = fast_frees_ = 0;
    return NextHotSlow(out, tag);
  }
  // Plain tags stay below the hot bytes; 1-3 alone are not records in
  // version 4 (their records always start with a hot byte).
  if (tag_byte <= static_cast<uint8_t>(RecordTag::kRealloc) ||
      tag_byte >= static_cast<uint8_t>(RecordTag::kTagLimit)) {
    return Fail("unknown");
  }
  RecordTag tag = static_cast<RecordTag>(tag_byte);
  r.tag = tag;
  fast_records_ = fast_frees_ = 0;  // the record stream shrank by more than a hot record
  // A copy of a rare record (the analyzer keeps some) must not carry views
  // of another kind into a chunk buffer that is gone by then. The hot
  // records above skip these stores.
  r.module.path = r.module.build_id = std::string_view();
  r.process.executable = r.process.parent_trace = std::string_view();
  r.exec_path = r.marker_name = std::string_view();
  // Any other record: its body length, then the body, decoded within it.
  uint64_t length;
  if (!ReadVarint(&length)) return Fail("length of a");
  if (length > static_cast<uint64_t>(end_ - pos_)) return Fail("length of a");
  const uint8_t* rows_end = end_;
  const uint8_t* body_end = pos_ + length;
  end_ = body_end;
  bool ok = NextSlow(out, tag);
  if (!ok) return false;  // Fail() already named the record
  // A longer body than this reader knows is skipped: later versions may
  // append fields to a record.
  pos_ = body_end;
  end_ = rows_end;
  return true;
}

// Each hot record takes at most kFastRowBytes of the record stream after
// its first byte, two varints of the time and misc columns and one of the
// size column (two for a compact realloc); an exact free, of the record
// stream and the time column only.
ChunkDecoder::Budget ChunkDecoder::FastBudget(const uint8_t* pos, const uint8_t* times,
                                              const uint8_t* sizes, const uint8_t* misc) const {
  auto room = [](const uint8_t* p, const uint8_t* end, ptrdiff_t per_record) {
    return static_cast<uint64_t>((end - p) / per_record);
  };
  static_assert(kHotRecordBytes == 1 + kFastRowBytes);
  Budget b;
  if (address_) return Budget{0, 0};  // address frees: the checked path only (constructor)
  uint64_t n = room(pos, end_, kHotRecordBytes);
  n = std::min(n, room(times, columns_[kTimeColumn].end, 2 * kVarint));
  b.frees = n;
  // A compact realloc reads two sizes (trace_format.h, "Compact frees").
  n = std::min(n, room(sizes, columns_[kSizeColumn].end,
                       compact_ ? kCompactReallocSizeFields * kVarint : kVarint));
  n = std::min(n, room(misc, columns_[kMiscColumn].end, 2 * kVarint));
  b.records = n;
  return b;
}

// The checked path of the hot records (tag and api already set): fields
// from the record stream and the two columns, every read bounds-checked.
bool ChunkDecoder::NextHotSlow(Record* out, RecordTag tag) {
  Record& r = *out;
  const char* what = tag == RecordTag::kAlloc  ? "alloc"
                     : tag == RecordTag::kFree ? "free"
                                               : "realloc";
  uint64_t dt;
  if (!ReadColumn(kTimeColumn, &dt) || dt > kMaxTimeDeltaUs) return Fail(what);
  time_us_ += dt;
  r.time_us = time_us_;
  auto read_address = [&]() {
    uint64_t delta;
    if (!ReadColumn(kMiscColumn, &delta)) return false;
    last_address_ += static_cast<uint64_t>(UnZigZag(delta));
    r.address = last_address_;
    return true;
  };
  if (address_) return NextAddressHot(out, tag, what);
  switch (tag) {
    case RecordTag::kAlloc:
      if (!ReadVarint(&r.stack) || !ReadColumn(kSizeColumn, &r.size) ||
          !ReadColumn(kMiscColumn, &r.alignment) || !read_address()) {
        return Fail(what);
      }
      r.id = MakeAllocId(header_.thread_index, next_counter_++);
      return true;
    case RecordTag::kFree:
      if (compact_) {
        r.id = 0;
        if (!ReadVarint(&r.stack) || !ReadColumn(kSizeColumn, &r.size)) return Fail(what);
        return true;
      }
      if (!ReadIdRef(&r.id)) return Fail(what);
      return true;
    case RecordTag::kRealloc: {
      uint64_t dt2;
      bool old_ok = compact_ ? (r.old_id = 0, ReadVarint(&r.old_stack) &&
                                                  ReadColumn(kSizeColumn, &r.old_size))
                             : (r.old_stack = r.old_size = 0, ReadIdRef(&r.old_id));
      if (!old_ok || !ReadColumn(kTimeColumn, &dt2) || dt2 > kMaxTimeDeltaUs ||
          !ReadVarint(&r.stack) || !ReadColumn(kSizeColumn, &r.size) || !read_address()) {
        return Fail(what);
      }
      time_us_ += dt2;
      r.time2_us = time_us_;
      r.id = MakeAllocId(header_.thread_index, next_counter_++);
      return true;
    }
    default:
      return Fail("unknown");
  }
}

// Address frees (trace_format.h, "Address frees"): the rows of version 6,
// the time delta already read. An order value above
// AddressOrder's range is corrupt.
bool ChunkDecoder::NextAddressHot(Record* out, RecordTag tag, const char* what) {
  Record& r = *out;
  auto read_address = [&](uint64_t* address, uint64_t* order) {
    uint64_t delta;
    if (!ReadColumn(kMiscColumn, &delta)) return false;
    last_address_ += static_cast<uint64_t>(UnZigZag(delta));
    *address = last_address_;
    return ReadColumn(kMiscColumn, order) && *order <= kAddressCountModulo;
  };
  r.old_stack = r.old_size = 0;
  switch (tag) {
    case RecordTag::kAlloc:
      if (!ReadVarint(&r.stack) || !ReadColumn(kSizeColumn, &r.size) ||
          !ReadColumn(kMiscColumn, &r.alignment) || !read_address(&r.address, &r.order)) {
        return Fail(what);
      }
      r.id = MakeAllocId(header_.thread_index, next_counter_++);
      return true;
    case RecordTag::kFree:
      r.id = 0;
      if (!read_address(&r.address, &r.order)) return Fail(what);
      return true;
    case RecordTag::kRealloc: {
      uint64_t dt2;
      r.old_id = 0;
      if (!ReadColumn(kTimeColumn, &dt2) || dt2 > kMaxTimeDeltaUs || !ReadVarint(&r.stack) ||
          !ReadColumn(kSizeColumn, &r.size) || !read_address(&r.old_address, &r.old_order) ||
          !read_address(&r.address, &r.order)) {
        return Fail(what);
      }
      time_us_ += dt2;
      r.time2_us = time_us_;
      r.id = MakeAllocId(header_.thread_index, next_counter_++);
      return true;
    }
    default:
      return Fail("unknown");
  }
}

bool ChunkDecoder::NextSlow(Record* out, RecordTag tag) {
  Record& r = *out;

  if (tag == RecordTag::kBlockClasses) {
    uint64_t count;
    uint8_t leak_class;
    if (!ReadVarint(&r.block_classes.scan) || !ReadByte(&leak_class) || leak_class == 0 ||
        leak_class > kLeakClassCount || !ReadVarint(&count) ||
        count > static_cast<uint64_t>(end_ - pos_)) {  // every id takes at least one byte
      return Fail("block classes");
    }
    r.block_classes.leak_class = static_cast<LeakClass>(leak_class);
    r.block_classes.ids.resize(count);
    uint64_t prev = 0;
    for (auto& id : r.block_classes.ids) {
      int64_t delta;
      if (!ReadSignedVarint(&delta)) return Fail("block classes");
      prev += static_cast<uint64_t>(delta);
      id = prev;
    }
    // Compact traces append each block's stack and size (trace_format.h,
    // "Compact frees"); a body without them has none.
    if (compact_ && pos_ < end_) {
      if (count > static_cast<uint64_t>(end_ - pos_) / 2) return Fail("block classes");
      r.block_classes.stacks.resize(count);
      r.block_classes.sizes.resize(count);
      for (uint64_t i = 0; i < count; ++i) {
        if (!ReadVarint(&r.block_classes.stacks[i]) || !ReadVarint(&r.block_classes.sizes[i])) {
          return Fail("block classes");
        }
      }
    }
    r.time_us = time_us_;
    return true;
  }

  if (tag == RecordTag::kStackNode) {
    int64_t node_delta, ip_delta;
    uint64_t parent_delta;
    if (!ReadSignedVarint(&node_delta) || !ReadVarint(&parent_delta) ||
        !ReadSignedVarint(&ip_delta)) {
      return Fail("stack node");
    }
    last_node_ += static_cast<uint64_t>(node_delta);
    last_node_ip_ += static_cast<uint64_t>(ip_delta);
    if (!IsValidStackNode(last_node_, parent_delta)) return Fail("stack node");
    r.stack_node.node = last_node_;
    r.stack_node.parent = last_node_ - parent_delta;
    r.stack_node.ip = last_node_ip_;
    r.time_us = time_us_;
    return true;
  }

  uint64_t dt;
  if (!ReadVarint(&dt) || dt > kMaxTimeDeltaUs) return Fail("time");
  time_us_ += dt;
  r.time_us = time_us_;

  auto read_api = [&]() {
    uint8_t b;
    if (!ReadByte(&b) || b >= static_cast<uint8_t>(Api::kApiLimit)) return false;
    r.api = static_cast<Api>(b);
    return true;
  };
  auto read_string = [&](std::string_view* s) {
    const uint8_t* data;
    size_t len;
    if (!ReadBytes(&data, &len, kMaxStringBytes)) return false;
    *s = std::string_view(reinterpret_cast<const char*>(data), len);
    return true;
  };

  switch (tag) {
    case RecordTag::kAllocFailed:
      if (!read_api() || !ReadVarint(&r.size) || !ReadVarint(&r.stack) ||
          !ReadVarint(&r.alignment)) {
        return Fail("failed allocation");
      }
      return true;
    case RecordTag::kModule: {
      uint64_t count;
      if (!ReadVarint(&r.module.id) || !ReadVarint(&r.module.load_address) ||
          !read_string(&r.module.path) || !read_string(&r.module.build_id) ||
          !ReadVarint(&count) || count > kMaxSegments) {
        return Fail("module");
      }
      r.module.segments.resize(count);
      for (auto& s : r.module.segments) {
        if (!ReadVarint(&s.vaddr) || !ReadVarint(&s.memsz) ||
            !ReadVarint(&s.file_offset) || !ReadByte(&s.flags)) {
          return Fail("module segment");
        }
      }
      return true;
    }
    case RecordTag::kModuleUnload:
      if (!ReadVarint(&r.module.id)) return Fail("value");
      return true;
    case RecordTag::kRss:
      if (!ReadVarint(&r.rss_bytes)) return Fail("value");
      return true;
    case RecordTag::kFork:
      if (!ReadVarint(&r.child_pid)) return Fail("value");
      return true;
    case RecordTag::kLost:
      if (!ReadVarint(&r.lost_events)) return Fail("value");
      return true;
    case RecordTag::kThreadStart:
      if (!ReadVarint(&r.thread_start.tid) || !ReadVarint(&r.thread_start.creator_index)) {
        return Fail("thread start");
      }
      return true;
    case RecordTag::kProcess: {
      uint64_t argc;
      if (!read_string(&r.process.executable) || !ReadVarint(&argc) || argc > kMaxArgs) {
        return Fail("process");
      }
      r.process.argv.resize(argc);
      for (auto& a : r.process.argv) {
        if (!read_string(&a)) return Fail("process argument");
      }
      if (!ReadVarint(&r.process.parent_pid) || !read_string(&r.process.parent_trace)) {
        return Fail("process");
      }
      return true;
    }
    case RecordTag::kExec:
      if (!read_string(&r.exec_path)) return Fail("string");
      return true;
    case RecordTag::kMarker:
      if (!read_string(&r.marker_name)) return Fail("string");
      return true;
    case RecordTag::kExecFailed:
      return true;
    case RecordTag::kInherited:
      if (!ReadVarint(&r.id) || !read_api() || !ReadVarint(&r.size) ||
          !ReadVarint(&r.stack)) {
        return Fail("inherited");
      }
      return true;
    case RecordTag::kLeakScan: {
      Record::LeakScanFields& l = r.leak_scan;
      uint8_t reason;
      if (!ReadVarint(&l.scan) || !ReadByte(&reason) || !ReadVarint(&l.duration_us) ||
          !ReadVarint(&l.threads_stopped) || !ReadVarint(&l.threads_missed) ||
          !ReadVarint(&l.root_bytes) || !ReadVarint(&l.blocks)) {
        return Fail("leak scan");
      }
      l.reason = static_cast<ScanReason>(reason);
      for (int i = 0; i < kLeakClassCount; ++i) {
        if (!ReadVarint(&l.class_blocks[i]) || !ReadVarint(&l.class_bytes[i])) {
          return Fail("leak scan");
        }
      }
      return true;
    }
    case RecordTag::kFreeError: {
      uint8_t error, action;
      if (!read_api() || !ReadByte(&error) || !ReadByte(&action) ||
          !ReadVarint(&r.address) || !ReadVarint(&r.stack) ||
          !ReadVarint(&r.id)) {
        return Fail("free error");
      }
      r.free_error.error = static_cast<FreeError>(error);
      r.free_error.action = static_cast<FreeAction>(action);
      return true;
    }
    case RecordTag::kEnd: {
      uint8_t reason;
      if (!ReadByte(&reason) || !ReadSignedVarint(&r.end.exit_status)) {
        return Fail("end");
      }
      r.end.reason = static_cast<EndReason>(reason);
      return true;
    }
    default:
      return Fail("unknown");
  }
}

}  // namespace heapsight::format
