// examples/04_vector_growth.cc: lesson 4, slice optimization -> vector growth.
//
// Three patterns, costly vs improved:
//   1. GrowWithoutReserve: push_back kItems ints into an empty vector. libstdc++
//      doubles the capacity (1, 2, 4, ... 2^20): 21 allocations, 20 of them
//      temporary, and the peak holds both the old and the new buffer while
//      copying. GrowWithReserve: reserve(kItems) first: one allocation.
//   2. KeepOversized: a vector reserved for kItems but holding kKept items
//      stays at full capacity. ShrinkAfterUse: shrink_to_fit() reallocates to
//      exactly kKept ints and frees the big buffer.
//   3. KeepHeaderView: a small view into a big buffer keeps all of the
//      buffer alive (Go's sub-slice retention). CopyHeader copies the small
//      part out and lets the big buffer go.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "example_util.h"

namespace {

constexpr int kItems = 1 << 20;   // 1,048,576 ints
constexpr int kKept = 1000;
constexpr size_t kBigBuffer = 16 * 1024 * 1024;
constexpr size_t kHeaderBytes = 64;

HS_NOINLINE std::vector<int> GrowWithoutReserve() {
  std::vector<int> v;
  for (int i = 0; i < kItems; ++i) v.push_back(i);
  return v;
}

HS_NOINLINE std::vector<int> GrowWithReserve() {
  std::vector<int> v;
  v.reserve(kItems);
  for (int i = 0; i < kItems; ++i) v.push_back(i);
  return v;
}

HS_NOINLINE std::vector<int> KeepOversized() {
  std::vector<int> v;
  v.reserve(kItems);
  for (int i = 0; i < kKept; ++i) v.push_back(i);
  return v;  // capacity stays kItems
}

HS_NOINLINE std::vector<int> ShrinkAfterUse() {
  std::vector<int> v;
  v.reserve(kItems);
  for (int i = 0; i < kKept; ++i) v.push_back(i);
  v.shrink_to_fit();  // one new kKept-int buffer; the big one is freed
  return v;
}

// A "message" whose header is all the caller keeps.
struct HeaderView {
  std::shared_ptr<std::vector<char>> owner;  // keeps the whole buffer alive
  std::string_view header;
};

HS_NOINLINE std::shared_ptr<std::vector<char>> ReadMessage() {
  auto buf = std::make_shared<std::vector<char>>(kBigBuffer, 'm');
  std::memcpy(buf->data(), "HEADER", 6);
  return buf;
}

HS_NOINLINE HeaderView KeepHeaderView() {
  auto buf = ReadMessage();
  return HeaderView{buf, std::string_view(buf->data(), kHeaderBytes)};
}

HS_NOINLINE std::string CopyHeader() {
  auto buf = ReadMessage();
  return std::string(buf->data(), kHeaderBytes);  // 64 bytes: its own block
}

}  // namespace

int main(int argc, char** argv) {
  examples::Mode mode;
  if (!examples::ParseMode(argc, argv, &mode)) return 2;
  if (mode == examples::Mode::kCostly) {
    std::vector<int> grown = GrowWithoutReserve();
    std::vector<int> oversized = KeepOversized();
    HeaderView view = KeepHeaderView();
    examples::KeepAlive(grown[5]);
    examples::KeepAlive(oversized[5]);
    examples::KeepAlive(view.header[0]);
  } else {
    std::vector<int> grown = GrowWithReserve();
    std::vector<int> shrunk = ShrinkAfterUse();
    std::string header = CopyHeader();
    examples::KeepAlive(grown[5]);
    examples::KeepAlive(shrunk[5]);
    examples::KeepAlive(header[0]);
  }
  return 0;
}
