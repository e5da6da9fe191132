// format/chunk_decoder.cc: decoding of chunk records. See chunk_decoder.h.
#include "format/chunk_decoder.h"

#include <cstring>

namespace heapsight::format {
namespace {

// Caps for untrusted counts and lengths.
constexpr size_t kMaxStringBytes = 1 << 20;
constexpr uint64_t kMaxSegments = 4096;
constexpr uint64_t kMaxArgs = 1 << 16;

// The fast path needs this many bytes after the tag: the longest kRealloc is
// dt, api, a long id_ref (2 varints), dt2, size, stack and address delta
// (7 varints of at most 10 bytes and one byte).
constexpr ptrdiff_t kFastReadBytes = 80;

// A varint read without end checks: the caller guarantees 10 readable bytes.
// False for a varint that overflows 64 bits or runs longer than 10 bytes.
inline bool UncheckedVarint(const uint8_t*& p, uint64_t* v) {
  uint64_t byte = *p++;
  if (byte < 0x80) {
    *v = byte;
    return true;
  }
  uint64_t result = byte & 0x7f;
  for (int shift = 7; shift < 64; shift += 7) {
    byte = *p++;
    if (shift == 63 && byte > 1) return false;
    result |= (byte & 0x7f) << shift;
    if (byte < 0x80) {
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace

ChunkDecoder::ChunkDecoder(const uint8_t* chunk, size_t size) : base_(chunk), size_(size) {
  if (size < sizeof(ChunkHeader)) {
    error_ = "chunk of " + std::to_string(size) + " bytes is shorter than its header";
    return;
  }
  std::memcpy(&header_, chunk, sizeof header_);
  pos_ = chunk + sizeof header_;
  end_ = chunk + size;
  time_us_ = header_.base_time_us;
  next_counter_ = header_.first_alloc_counter;
}

bool ChunkDecoder::Fail(const char* what) {
  size_t offset = static_cast<size_t>(pos_ - base_);
  pos_ = end_;
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

bool ChunkDecoder::ReadIdRef(uint64_t* id) {
  uint64_t v;
  if (!ReadVarint(&v)) return false;
  if ((v & 1) == 0) {
    uint64_t distance = v >> 1;
    if (distance == 0 || distance > next_counter_) return false;
    *id = MakeAllocId(header_.thread_index, next_counter_ - distance);
    return true;
  }
  uint64_t thread = v >> 1, counter;
  if (thread > UINT32_MAX || !ReadVarint(&counter)) return false;
  if (counter > kAllocCounterMask) return false;
  *id = MakeAllocId(static_cast<uint32_t>(thread), counter);
  return true;
}

bool ChunkDecoder::Next(Record* out) {
  if (pos_ >= end_ || !error_.empty()) return false;
  uint8_t tag_byte = *pos_++;
  if (tag_byte == 0 || tag_byte >= static_cast<uint8_t>(RecordTag::kTagLimit)) {
    return Fail("unknown");
  }
  RecordTag tag = static_cast<RecordTag>(tag_byte);
  Record& r = *out;
  r.tag = tag;
  if (!r.segments.empty()) r.segments.clear();
  if (!r.ids.empty()) r.ids.clear();
  if (!r.argv.empty()) r.argv.clear();
  // Two separate stores: `text = text2 = {}` would load text2 back right
  // after storing it in halves, a store-forwarding stall on every record.
  r.text = std::string_view();
  r.text2 = std::string_view();
  if (tag_byte <= static_cast<uint8_t>(RecordTag::kRealloc) && end_ - pos_ >= kFastReadBytes &&
      NextFast(out, tag)) {
    return true;
  }
  return NextSlow(out, tag);
}

bool ChunkDecoder::NextFast(Record* out, RecordTag tag) {
  // Decodes into locals and commits only when the whole record is valid;
  // anything unusual returns false and leaves the checked path to decode
  // the record (or to name the error) from the same position.
  const uint8_t* p = pos_;
  uint64_t dt;
  if (!UncheckedVarint(p, &dt) || dt > kMaxTimeDeltaUs) return false;
  uint8_t api = *p++;
  if (api >= static_cast<uint8_t>(Api::kApiLimit)) return false;
  Record& r = *out;
  auto id_ref = [&](uint64_t* id) {
    uint64_t v;
    if (!UncheckedVarint(p, &v)) return false;
    if ((v & 1) == 0) {
      uint64_t distance = v >> 1;
      if (distance == 0 || distance > next_counter_) return false;
      *id = MakeAllocId(header_.thread_index, next_counter_ - distance);
      return true;
    }
    uint64_t thread = v >> 1, counter;
    if (thread > UINT32_MAX || !UncheckedVarint(p, &counter) || counter > kAllocCounterMask) {
      return false;
    }
    *id = MakeAllocId(static_cast<uint32_t>(thread), counter);
    return true;
  };
  if (tag == RecordTag::kFree) {
    uint64_t id;
    if (!id_ref(&id)) return false;
    time_us_ += dt;
    r.time_us = time_us_;
    r.api = static_cast<Api>(api);
    r.id = id;
    pos_ = p;
    return true;
  }
  uint64_t old_id = 0, dt2 = 0, size, stack, alignment = 0, address;
  if (tag == RecordTag::kRealloc) {
    if (!id_ref(&old_id) || !UncheckedVarint(p, &dt2) || dt2 > kMaxTimeDeltaUs) return false;
  }
  if (!UncheckedVarint(p, &size) || !UncheckedVarint(p, &stack)) return false;
  if (tag == RecordTag::kAlloc && !UncheckedVarint(p, &alignment)) return false;
  if (!UncheckedVarint(p, &address)) return false;
  time_us_ += dt;
  r.time_us = time_us_;
  if (tag == RecordTag::kRealloc) {
    r.old_id = old_id;
    time_us_ += dt2;
    r.time2_us = time_us_;
  } else {
    r.alignment = alignment;
  }
  r.api = static_cast<Api>(api);
  r.size = size;
  r.stack = stack;
  last_address_ += static_cast<uint64_t>(UnZigZag(address));
  r.address = last_address_;
  r.id = MakeAllocId(header_.thread_index, next_counter_++);
  pos_ = p;
  return true;
}

bool ChunkDecoder::NextSlow(Record* out, RecordTag tag) {
  Record& r = *out;

  if (tag == RecordTag::kBlockClasses) {
    uint64_t count;
    if (!ReadVarint(&r.value) || !ReadByte(&r.code) || r.code == 0 ||
        r.code > kLeakClassCount || !ReadVarint(&count) ||
        count > static_cast<uint64_t>(end_ - pos_)) {  // every id takes at least one byte
      return Fail("block classes");
    }
    r.ids.resize(count);
    uint64_t prev = 0;
    for (auto& id : r.ids) {
      int64_t delta;
      if (!ReadSignedVarint(&delta)) return Fail("block classes");
      prev += static_cast<uint64_t>(delta);
      id = prev;
    }
    r.time_us = time_us_;
    return true;
  }

  if (tag == RecordTag::kStackNode) {
    if (!ReadVarint(&r.value) || !ReadVarint(&r.value2) ||
        !ReadVarint(&r.ip)) {
      return Fail("stack node");
    }
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
  auto read_address = [&]() {
    int64_t delta;
    if (!ReadSignedVarint(&delta)) return false;
    last_address_ += static_cast<uint64_t>(delta);
    r.address = last_address_;
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
    case RecordTag::kAlloc:
      if (!read_api() || !ReadVarint(&r.size) || !ReadVarint(&r.stack) ||
          !ReadVarint(&r.alignment) || !read_address()) {
        return Fail("alloc");
      }
      r.id = MakeAllocId(header_.thread_index, next_counter_++);
      return true;
    case RecordTag::kFree:
      if (!read_api() || !ReadIdRef(&r.id)) return Fail("free");
      return true;
    case RecordTag::kRealloc: {
      uint64_t dt2;
      if (!read_api() || !ReadIdRef(&r.old_id) || !ReadVarint(&dt2) ||
          dt2 > kMaxTimeDeltaUs || !ReadVarint(&r.size) ||
          !ReadVarint(&r.stack) || !read_address()) {
        return Fail("realloc");
      }
      time_us_ += dt2;
      r.time2_us = time_us_;
      r.id = MakeAllocId(header_.thread_index, next_counter_++);
      return true;
    }
    case RecordTag::kAllocFailed:
      if (!read_api() || !ReadVarint(&r.size) || !ReadVarint(&r.stack) ||
          !ReadVarint(&r.alignment)) {
        return Fail("failed allocation");
      }
      return true;
    case RecordTag::kBadFree:
      if (!read_api() || !ReadVarint(&r.address) || !ReadVarint(&r.stack) ||
          !ReadByte(&r.code)) {
        return Fail("bad free");
      }
      return true;
    case RecordTag::kModule: {
      uint64_t count;
      if (!ReadVarint(&r.value) || !ReadVarint(&r.value2) ||
          !read_string(&r.text) || !read_string(&r.text2) || !ReadVarint(&count) ||
          count > kMaxSegments) {
        return Fail("module");
      }
      r.segments.resize(count);
      for (auto& s : r.segments) {
        if (!ReadVarint(&s.vaddr) || !ReadVarint(&s.memsz) ||
            !ReadVarint(&s.file_offset) || !ReadByte(&s.flags)) {
          return Fail("module segment");
        }
      }
      return true;
    }
    case RecordTag::kModuleUnload:
    case RecordTag::kRss:
    case RecordTag::kFork:
    case RecordTag::kLost:
      if (!ReadVarint(&r.value)) return Fail("value");
      return true;
    case RecordTag::kThreadStart:
      if (!ReadVarint(&r.value) || !ReadVarint(&r.value2)) {
        return Fail("thread start");
      }
      return true;
    case RecordTag::kProcess: {
      uint64_t argc;
      if (!read_string(&r.text) || !ReadVarint(&argc) || argc > kMaxArgs) {
        return Fail("process");
      }
      r.argv.resize(argc);
      for (auto& a : r.argv) {
        if (!read_string(&a)) return Fail("process argument");
      }
      if (!ReadVarint(&r.value2) || !read_string(&r.text2)) return Fail("process");
      return true;
    }
    case RecordTag::kExec:
    case RecordTag::kMarker:
      if (!read_string(&r.text)) return Fail("string");
      return true;
    case RecordTag::kExecFailed:
      return true;
    case RecordTag::kInherited:
      if (!ReadVarint(&r.id) || !read_api() || !ReadVarint(&r.size) ||
          !ReadVarint(&r.stack)) {
        return Fail("inherited");
      }
      return true;
    case RecordTag::kLeakScan:
      if (!ReadVarint(&r.value) || !ReadByte(&r.code) ||
          !ReadVarint(&r.size) || !ReadVarint(&r.value2) ||
          !ReadVarint(&r.old_id) || !ReadVarint(&r.address) ||
          !ReadVarint(&r.id)) {
        return Fail("leak scan");
      }
      for (int i = 0; i < kLeakClassCount; ++i) {
        if (!ReadVarint(&r.class_blocks[i]) || !ReadVarint(&r.class_bytes[i])) {
          return Fail("leak scan");
        }
      }
      return true;
    case RecordTag::kFreeError:
      if (!read_api() || !ReadByte(&r.code) || !ReadByte(&r.code2) ||
          !ReadVarint(&r.address) || !ReadVarint(&r.stack) ||
          !ReadVarint(&r.id)) {
        return Fail("free error");
      }
      return true;
    case RecordTag::kEnd:
      if (!ReadByte(&r.code) || !ReadSignedVarint(&r.exit_status)) {
        return Fail("end");
      }
      return true;
    default:
      return Fail("unknown");
  }
}

}  // namespace heapsight::format
