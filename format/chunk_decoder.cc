// format/chunk_decoder.cc: decoding of chunk records. See chunk_decoder.h.
#include "format/chunk_decoder.h"

#include <cstring>

namespace heapsight::format {
namespace {

// Caps for untrusted counts and lengths.
constexpr size_t kMaxStringBytes = 1 << 20;
constexpr uint64_t kMaxSegments = 4096;
constexpr uint64_t kMaxArgs = 1 << 16;

}  // namespace

ChunkDecoder::ChunkDecoder(const uint8_t* chunk, size_t size)
    : base_(chunk), reader_(chunk, 0), size_(size) {
  if (size < sizeof(ChunkHeader)) {
    error_ = "chunk of " + std::to_string(size) + " bytes is shorter than its header";
    return;
  }
  std::memcpy(&header_, chunk, sizeof header_);
  reader_ = ByteReader(chunk + sizeof header_, size - sizeof header_);
  time_us_ = header_.base_time_us;
  next_counter_ = header_.first_alloc_counter;
}

bool ChunkDecoder::Fail(const char* what) {
  size_t offset = size_ - reader_.remaining();
  error_ = std::string("malformed ") + what + " record at chunk offset " + std::to_string(offset);
  return false;
}

bool ChunkDecoder::ReadIdRef(uint64_t* id) {
  uint64_t v;
  if (!reader_.ReadVarint(&v)) return false;
  if ((v & 1) == 0) {
    uint64_t distance = v >> 1;
    if (distance == 0 || distance > next_counter_) return false;
    *id = MakeAllocId(header_.thread_index, next_counter_ - distance);
    return true;
  }
  uint64_t thread = v >> 1, counter;
  if (thread > UINT32_MAX || !reader_.ReadVarint(&counter)) return false;
  if (counter > kAllocCounterMask) return false;
  *id = MakeAllocId(static_cast<uint32_t>(thread), counter);
  return true;
}

bool ChunkDecoder::Next(Record* out) {
  if (!ok() || reader_.remaining() == 0) return false;
  uint8_t tag_byte = 0;
  reader_.ReadByte(&tag_byte);
  if (tag_byte == 0 || tag_byte >= static_cast<uint8_t>(RecordTag::kTagLimit)) {
    return Fail("unknown");
  }
  RecordTag tag = static_cast<RecordTag>(tag_byte);
  Record& r = *out;
  r.tag = tag;
  r.segments.clear();
  r.ids.clear();
  r.argv.clear();
  r.text = r.text2 = {};

  if (tag == RecordTag::kBlockClasses) {
    uint64_t count;
    if (!reader_.ReadVarint(&r.value) || !reader_.ReadByte(&r.code) || r.code == 0 ||
        r.code > kLeakClassCount || !reader_.ReadVarint(&count) ||
        count > reader_.remaining()) {  // every id takes at least one byte
      return Fail("block classes");
    }
    r.ids.resize(count);
    uint64_t prev = 0;
    for (auto& id : r.ids) {
      int64_t delta;
      if (!reader_.ReadSignedVarint(&delta)) return Fail("block classes");
      prev += static_cast<uint64_t>(delta);
      id = prev;
    }
    r.time_us = time_us_;
    return true;
  }

  if (tag == RecordTag::kStackNode) {
    if (!reader_.ReadVarint(&r.value) || !reader_.ReadVarint(&r.value2) ||
        !reader_.ReadVarint(&r.ip)) {
      return Fail("stack node");
    }
    r.time_us = time_us_;
    return true;
  }

  uint64_t dt;
  if (!reader_.ReadVarint(&dt) || dt > (uint64_t{1} << 50)) return Fail("time");
  time_us_ += dt;
  r.time_us = time_us_;

  auto read_api = [&]() {
    uint8_t b;
    if (!reader_.ReadByte(&b) || b >= static_cast<uint8_t>(Api::kApiLimit)) return false;
    r.api = static_cast<Api>(b);
    return true;
  };
  auto read_address = [&]() {
    int64_t delta;
    if (!reader_.ReadSignedVarint(&delta)) return false;
    last_address_ += static_cast<uint64_t>(delta);
    r.address = last_address_;
    return true;
  };
  auto read_string = [&](std::string_view* s) {
    const uint8_t* data;
    size_t len;
    if (!reader_.ReadBytes(&data, &len, kMaxStringBytes)) return false;
    *s = std::string_view(reinterpret_cast<const char*>(data), len);
    return true;
  };

  switch (tag) {
    case RecordTag::kAlloc:
      if (!read_api() || !reader_.ReadVarint(&r.size) || !reader_.ReadVarint(&r.stack) ||
          !reader_.ReadVarint(&r.alignment) || !read_address()) {
        return Fail("alloc");
      }
      r.id = MakeAllocId(header_.thread_index, next_counter_++);
      return true;
    case RecordTag::kFree:
      if (!read_api() || !ReadIdRef(&r.id)) return Fail("free");
      return true;
    case RecordTag::kRealloc: {
      uint64_t dt2;
      if (!read_api() || !ReadIdRef(&r.old_id) || !reader_.ReadVarint(&dt2) ||
          dt2 > (uint64_t{1} << 50) || !reader_.ReadVarint(&r.size) ||
          !reader_.ReadVarint(&r.stack) || !read_address()) {
        return Fail("realloc");
      }
      time_us_ += dt2;
      r.time2_us = time_us_;
      r.id = MakeAllocId(header_.thread_index, next_counter_++);
      return true;
    }
    case RecordTag::kAllocFailed:
      if (!read_api() || !reader_.ReadVarint(&r.size) || !reader_.ReadVarint(&r.stack) ||
          !reader_.ReadVarint(&r.alignment)) {
        return Fail("failed allocation");
      }
      return true;
    case RecordTag::kBadFree:
      if (!read_api() || !reader_.ReadVarint(&r.address) || !reader_.ReadVarint(&r.stack) ||
          !reader_.ReadByte(&r.code)) {
        return Fail("bad free");
      }
      return true;
    case RecordTag::kModule: {
      uint64_t count;
      if (!reader_.ReadVarint(&r.value) || !reader_.ReadVarint(&r.value2) ||
          !read_string(&r.text) || !read_string(&r.text2) || !reader_.ReadVarint(&count) ||
          count > kMaxSegments) {
        return Fail("module");
      }
      r.segments.resize(count);
      for (auto& s : r.segments) {
        if (!reader_.ReadVarint(&s.vaddr) || !reader_.ReadVarint(&s.memsz) ||
            !reader_.ReadVarint(&s.file_offset) || !reader_.ReadByte(&s.flags)) {
          return Fail("module segment");
        }
      }
      return true;
    }
    case RecordTag::kModuleUnload:
    case RecordTag::kRss:
    case RecordTag::kFork:
    case RecordTag::kLost:
      if (!reader_.ReadVarint(&r.value)) return Fail("value");
      return true;
    case RecordTag::kThreadStart:
      if (!reader_.ReadVarint(&r.value) || !reader_.ReadVarint(&r.value2)) {
        return Fail("thread start");
      }
      return true;
    case RecordTag::kProcess: {
      uint64_t argc;
      if (!read_string(&r.text) || !reader_.ReadVarint(&argc) || argc > kMaxArgs) {
        return Fail("process");
      }
      r.argv.resize(argc);
      for (auto& a : r.argv) {
        if (!read_string(&a)) return Fail("process argument");
      }
      if (!reader_.ReadVarint(&r.value2) || !read_string(&r.text2)) return Fail("process");
      return true;
    }
    case RecordTag::kExec:
    case RecordTag::kMarker:
      if (!read_string(&r.text)) return Fail("string");
      return true;
    case RecordTag::kExecFailed:
      return true;
    case RecordTag::kInherited:
      if (!reader_.ReadVarint(&r.id) || !read_api() || !reader_.ReadVarint(&r.size) ||
          !reader_.ReadVarint(&r.stack)) {
        return Fail("inherited");
      }
      return true;
    case RecordTag::kLeakScan:
      if (!reader_.ReadVarint(&r.value) || !reader_.ReadByte(&r.code) ||
          !reader_.ReadVarint(&r.size) || !reader_.ReadVarint(&r.value2) ||
          !reader_.ReadVarint(&r.old_id) || !reader_.ReadVarint(&r.address) ||
          !reader_.ReadVarint(&r.id)) {
        return Fail("leak scan");
      }
      for (int i = 0; i < kLeakClassCount; ++i) {
        if (!reader_.ReadVarint(&r.class_blocks[i]) || !reader_.ReadVarint(&r.class_bytes[i])) {
          return Fail("leak scan");
        }
      }
      return true;
    case RecordTag::kFreeError:
      if (!read_api() || !reader_.ReadByte(&r.code) || !reader_.ReadByte(&r.code2) ||
          !reader_.ReadVarint(&r.address) || !reader_.ReadVarint(&r.stack) ||
          !reader_.ReadVarint(&r.id)) {
        return Fail("free error");
      }
      return true;
    case RecordTag::kEnd:
      if (!reader_.ReadByte(&r.code) || !reader_.ReadSignedVarint(&r.exit_status)) {
        return Fail("end");
      }
      return true;
    default:
      return Fail("unknown");
  }
}

}  // namespace heapsight::format
