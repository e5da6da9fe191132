// format/varint.h: LEB128 and zigzag integers used by every record.
//
// Constraints: header-only, no allocation, no locks, async-signal-safe. The
// writer functions assume the caller reserved kMaxVarintBytes per value; the
// reader functions bounds-check every byte because traces are untrusted.
#ifndef HEAPSIGHT_FORMAT_VARINT_H_
#define HEAPSIGHT_FORMAT_VARINT_H_

#include <cstddef>
#include <cstdint>

namespace heapsight::format {

inline constexpr size_t kMaxVarintBytes = 10;

// Writes `v` at `out` and returns the byte after it.
inline uint8_t* PutVarint(uint8_t* out, uint64_t v) {
  while (v >= 0x80) {
    *out++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<uint8_t>(v);
  return out;
}

constexpr uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
constexpr int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

inline uint8_t* PutSignedVarint(uint8_t* out, int64_t v) { return PutVarint(out, ZigZag(v)); }

constexpr size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// A bounds-checked cursor over untrusted bytes. Every Read* returns false
// (and leaves the cursor failed) when the input ends early or is malformed.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : pos_(data), end_(data + size) {}

  bool ReadVarint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= end_) return Fail();
      uint8_t byte = *pos_++;
      if (shift == 63 && byte > 1) return Fail();  // would overflow 64 bits
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return Fail();
  }
  bool ReadSignedVarint(int64_t* v) {
    uint64_t u;
    if (!ReadVarint(&u)) return false;
    *v = UnZigZag(u);
    return true;
  }
  bool ReadByte(uint8_t* v) {
    if (pos_ >= end_) return Fail();
    *v = *pos_++;
    return true;
  }
  // A uv length followed by that many bytes; `max_len` caps the length.
  bool ReadBytes(const uint8_t** data, size_t* len, size_t max_len) {
    uint64_t n;
    if (!ReadVarint(&n)) return false;
    if (n > max_len || n > static_cast<uint64_t>(end_ - pos_)) return Fail();
    *data = pos_;
    *len = static_cast<size_t>(n);
    pos_ += n;
    return true;
  }

  size_t remaining() const { return failed_ ? 0 : static_cast<size_t>(end_ - pos_); }
  bool failed() const { return failed_; }

 private:
  bool Fail() {
    failed_ = true;
    pos_ = end_;
    return false;
  }

  const uint8_t* pos_;
  const uint8_t* end_;
  bool failed_ = false;
};

}  // namespace heapsight::format

#endif  // HEAPSIGHT_FORMAT_VARINT_H_
