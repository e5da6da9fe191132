// analyzer/cache/byte_codec.h: the primitive encoding of the analysis cache
// (analysis_cache.h): LEB128 varints, fixed 64-bit doubles, length-prefixed
// strings, written to a growing buffer and read back with every length and
// count checked against what is left, because a cache file is untrusted
// input (anyone who can write next to a trace can write one).
#ifndef HEAPSIGHT_ANALYZER_CACHE_BYTE_CODEC_H_
#define HEAPSIGHT_ANALYZER_CACHE_BYTE_CODEC_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace heapsight::analyzer::cache {

class ByteWriter {
 public:
  void U64(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void I64(int64_t v) {  // zigzag
    U64((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void Bool(bool v) { U64(v ? 1 : 0); }
  void Double(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(bits >> (8 * i));
    out_.append(b, 8);
  }
  void Bytes(std::string_view s) {
    U64(s.size());
    out_.append(s.data(), s.size());
  }
  std::string& buffer() { return out_; }

 private:
  std::string out_;
};

// Reads what ByteWriter wrote. The first failure (a varint running off the
// end or longer than 10 bytes, a string or count longer than what is left)
// sets ok() to false; later reads return zeros and empty strings, so a
// decoder checks ok() once at the end (and before any allocation sized by
// a count: Count()).
class ByteReader {
 public:
  explicit ByteReader(std::string_view data) : data_(data) {}

  uint64_t U64() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return Fail();
      uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      if (shift == 63 && b > 1) return Fail();
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return Fail();
  }
  int64_t I64() {
    uint64_t u = U64();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  bool Bool() {
    uint64_t v = U64();
    if (v > 1) Fail();
    return v == 1;
  }
  double Double() {
    if (data_.size() - pos_ < 8 || !ok_) {
      Fail();
      return 0;
    }
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
    pos_ += 8;
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  std::string Bytes() {
    uint64_t n = U64();
    if (!ok_ || n > data_.size() - pos_) {
      Fail();
      return {};
    }
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  // A count of items that each take at least `min_bytes` encoded bytes:
  // more than what is left can hold fails (so a forged count never sizes an
  // allocation).
  uint64_t Count(uint64_t min_bytes = 1) {
    uint64_t n = U64();
    if (!ok_ || n > (data_.size() - pos_) / (min_bytes == 0 ? 1 : min_bytes)) {
      Fail();
      return 0;
    }
    return n;
  }
  // An enum's value, failing above `max`.
  uint64_t Enum(uint64_t max) {
    uint64_t v = U64();
    if (v > max) Fail();
    return ok_ ? v : 0;
  }

  bool ok() const { return ok_; }
  bool AtEnd() const { return pos_ == data_.size(); }
  size_t position() const { return pos_; }
  uint64_t Fail() {
    ok_ = false;
    pos_ = data_.size();
    return 0;
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace heapsight::analyzer::cache

#endif  // HEAPSIGHT_ANALYZER_CACHE_BYTE_CODEC_H_
