// tests/preload/memo_frame_index_test.cc: the unwind cache's index of its
// memos' frames: every frame added is a candidate (a missing bit would cost
// the cache a splice), other frames rarely are, and the index asks to be
// rebuilt once stale bits may have piled up.
#include "preload/memo_frame_index.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace heapsight::preload {
namespace {

struct Frame {
  uintptr_t sp, ip;
  uint32_t memo;
};

// Frames of `memos` stacks `depth` deep: sp 16-aligned and rising outwards,
// return addresses of a few functions, as a real thread's stacks look.
std::vector<Frame> Stacks(uint32_t memos, uint32_t depth, uintptr_t sp0) {
  std::vector<Frame> frames;
  for (uint32_t m = 0; m < memos; ++m) {
    uintptr_t sp = sp0 + m * 48;
    for (uint32_t f = 0; f < depth; ++f) {
      sp += 32 + 16 * ((f * 7 + m) % 5);
      frames.push_back({sp, 0x401000 + 0x35 * ((f * 13 + m * 3) % 40), m});
    }
  }
  return frames;
}

TEST(MemoFrameIndex, EveryAddedFrameIsACandidate) {
  auto index = std::make_unique<MemoFrameIndex>();
  index->Clear();
  const std::vector<Frame> frames = Stacks(MemoFrameIndex::kMaxMemos, 60, 0x7ffd00000000);
  for (const Frame& f : frames) index->Add(f.sp, f.ip, f.memo);
  for (const Frame& f : frames) {
    EXPECT_NE(index->Candidates(f.sp, f.ip) & (1u << f.memo), 0u) << f.sp << " " << f.ip;
  }
}

TEST(MemoFrameIndex, OtherFramesAreRarelyCandidates) {
  auto index = std::make_unique<MemoFrameIndex>();
  index->Clear();
  // 8 memos of 30 frames: 240 of 4,096 slots at most.
  for (const Frame& f : Stacks(8, 30, 0x7ffd00000000)) index->Add(f.sp, f.ip, f.memo);
  // The same depths on another stack, and the same stacks at other
  // return addresses.
  int false_candidates = 0, probes = 0;
  for (const Frame& f : Stacks(8, 30, 0x7ffd00100000)) {
    false_candidates += index->Candidates(f.sp, f.ip) != 0;
    ++probes;
  }
  for (const Frame& f : Stacks(8, 30, 0x7ffd00000000)) {
    false_candidates += index->Candidates(f.sp, f.ip + 3) != 0;
    ++probes;
  }
  EXPECT_LT(false_candidates * 10, probes) << false_candidates << " of " << probes;
}

TEST(MemoFrameIndex, ClearEmptiesAndRebuildIsDueAfterManyAdds) {
  auto index = std::make_unique<MemoFrameIndex>();
  index->Clear();
  EXPECT_FALSE(index->NeedsRebuild());
  index->Add(0x7ffd00001000, 0x401234, 3);
  EXPECT_EQ(index->Candidates(0x7ffd00001000, 0x401234), 1u << 3);
  index->Add(0x7ffd00001000, 0x401234, 5);  // a frame two memos share
  EXPECT_EQ(index->Candidates(0x7ffd00001000, 0x401234), (1u << 3) | (1u << 5));
  for (uint32_t k = 2; k < MemoFrameIndex::kRebuildAfter; ++k) {
    index->Add(0x7ffd00002000 + 16 * k, 0x401000, k % 8);
  }
  EXPECT_FALSE(index->NeedsRebuild());
  index->Add(0x7ffd00001000, 0x401234, 3);
  EXPECT_TRUE(index->NeedsRebuild());
  index->Clear();
  EXPECT_FALSE(index->NeedsRebuild());
  EXPECT_EQ(index->Candidates(0x7ffd00001000, 0x401234), 0u);
}

}  // namespace
}  // namespace heapsight::preload
