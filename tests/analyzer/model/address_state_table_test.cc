// tests/analyzer/model/address_state_table_test.cc: the address pairing's
// packed per-address states: every field round-trips through a slot, the
// addresses and streams that do not pack are kept apart, and growth keeps
// every state.
#include "analyzer/model/address_state_table.h"

#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

AddressState MakeState(uint64_t id, uint32_t stream, uint8_t count, bool live, bool known) {
  AddressState s;
  s.id = id;
  s.stream = stream;
  s.count = count;
  s.live = live;
  s.count_known = known;
  return s;
}

// Stores `s` at `address` (inserting it) and reads it back both ways.
void ExpectRoundTrip(AddressStateTable& t, uint64_t address, const AddressState& s) {
  bool inserted = false;
  AddressStateTable::Ref ref = t.Insert(address, AddressState{}, &inserted);
  t.Store(ref, address, s);
  EXPECT_EQ(t.Load(ref, address), s) << address;
  AddressState found;
  ASSERT_TRUE(t.Find(address, &found)) << address;
  EXPECT_EQ(found, s) << address;
}

TEST(AddressStateTableTest, EveryFieldRoundTrips) {
  AddressStateTable t;
  const uint32_t streams[] = {0,
                              1,
                              5,
                              AddressStateTable::kFarStream - 2,
                              AddressStateTable::kFarStream - 1,
                              AddressStateTable::kFarStream,
                              1'000'000,
                              AddressState::kNoStream - 1,
                              AddressState::kNoStream};
  const uint64_t ids[] = {0, 1, (uint64_t{0xffffff} << 40) | 12345, UINT64_MAX};
  uint64_t address = 0x7f00'0000'0000;
  for (uint32_t stream : streams) {
    for (uint64_t id : ids) {
      for (uint8_t count = 0; count < 16; ++count) {
        for (int flags = 0; flags < 4; ++flags) {
          address += 16;
          ExpectRoundTrip(t, address, MakeState(id, stream, count, (flags & 1) != 0,
                                                (flags & 2) != 0));
        }
      }
    }
  }
  EXPECT_EQ(t.size(), 9u * 4 * 16 * 4);
}

// A far stream's side entry goes when the state's stream fits again, and the
// slot's next far stream is its own.
TEST(AddressStateTableTest, FarStreamsFollowTheirState) {
  AddressStateTable t;
  const uint64_t a = 0x5555'0000'1230;
  ExpectRoundTrip(t, a, MakeState(9, 70'000, 3, true, true));
  ExpectRoundTrip(t, a + 16, MakeState(10, 80'000, 4, false, true));
  ExpectRoundTrip(t, a, MakeState(9, 2, 4, false, true));
  ExpectRoundTrip(t, a, MakeState(9, AddressState::kNoStream, 5, true, false));
  ExpectRoundTrip(t, a, MakeState(11, 90'000, 6, false, true));
  AddressState s;
  ASSERT_TRUE(t.Find(a + 16, &s));
  EXPECT_EQ(s.stream, 80'000u);
  EXPECT_EQ(t.size(), 2u);
}

// Address 0, unaligned addresses and those at or above 2^48 keep their
// states apart, found and listed as the others.
TEST(AddressStateTableTest, AddressesThatDoNotPackAreKeptApart) {
  AddressStateTable t;
  const uint64_t odd[] = {0, 8, 0x1001, uint64_t{1} << 48, UINT64_MAX, 0xffff'8000'0000'0000};
  for (uint64_t a : odd) ExpectRoundTrip(t, a, MakeState(a + 1, 3, 7, true, true));
  ExpectRoundTrip(t, 0x1000, MakeState(42, 3, 7, true, true));
  EXPECT_EQ(t.size(), 7u);
  std::map<uint64_t, uint64_t> listed;
  t.ForEach([&](uint64_t address, const AddressState& s) { listed[address] = s.id; });
  ASSERT_EQ(listed.size(), 7u);
  for (uint64_t a : odd) EXPECT_EQ(listed[a], a + 1);
  EXPECT_EQ(listed[0x1000], 42u);
  AddressState s;
  EXPECT_FALSE(t.Find(0x1010, &s));
  EXPECT_FALSE(t.Find(16, &s));
}

// An address already there is found, not inserted again, and keeps its
// state; a fresh one gets the state it was inserted with.
TEST(AddressStateTableTest, InsertFindsOrInsertsFresh) {
  AddressStateTable t;
  bool inserted = false;
  AddressState fresh = MakeState(0, AddressState::kNoStream, 0, false, false);
  AddressStateTable::Ref ref = t.Insert(0x2000, fresh, &inserted);
  EXPECT_TRUE(inserted);
  EXPECT_EQ(t.Load(ref, 0x2000), fresh);
  t.Store(ref, 0x2000, MakeState(77, 1, 1, true, true));
  ref = t.Insert(0x2000, fresh, &inserted);
  EXPECT_FALSE(inserted);
  EXPECT_EQ(t.Load(ref, 0x2000), MakeState(77, 1, 1, true, true));
  EXPECT_EQ(t.size(), 1u);
}

// 300,000 addresses (a python-like run of consecutive blocks, then random
// ones): every state survives the growths, the table stays within its
// load limit, and ForEach lists each address once.
TEST(AddressStateTableTest, GrowthKeepsEveryState) {
  AddressStateTable t;
  std::map<uint64_t, AddressState> want;
  std::mt19937_64 rng(23);
  for (uint64_t i = 0; i < 300'000; ++i) {
    const uint64_t address = i < 150'000 ? 0x5600'0000'0000 + 48 * i
                                         : (rng() & 0x7fff'ffff'fff0) | 0x10;
    const AddressState s =
        MakeState(i * 3, static_cast<uint32_t>(i % 5), static_cast<uint8_t>(i % 16),
                  (i & 1) != 0, (i & 2) != 0);
    bool inserted = false;
    AddressStateTable::Ref ref = t.Insert(address, AddressState{}, &inserted);
    t.Store(ref, address, s);
    want[address] = s;
  }
  EXPECT_EQ(t.size(), want.size());
  EXPECT_LE(t.size() * 4, t.capacity() * 3);
  EXPECT_GT(t.size() * 8, t.capacity() * 3);  // doubled only when full
  for (const auto& [address, s] : want) {
    AddressState found;
    ASSERT_TRUE(t.Find(address, &found)) << address;
    EXPECT_EQ(found, s) << address;
  }
  size_t listed = 0;
  t.ForEach([&](uint64_t address, const AddressState& s) {
    ++listed;
    auto it = want.find(address);
    ASSERT_NE(it, want.end()) << address;
    EXPECT_EQ(s, it->second);
  });
  EXPECT_EQ(listed, want.size());
}

}  // namespace
}  // namespace heapsight::analyzer
