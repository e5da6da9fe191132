// tests/preload/owner_biased_lock_test.cc: the owner's fast path and the
// remote takers exclude each other (exact counts, never a torn pair), an
// owner waits while a remote holds the lock, TryLock gives up while the
// owner is inside, and ownership moves between threads.
#include "preload/owner_biased_lock.h"

#include <gtest/gtest.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

namespace heapsight::preload {
namespace {

bool KernelHasExpeditedMembarrier() {
  long commands = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  return commands > 0 && (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0;
}

class OwnerBiasedLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The machine's kernel decides: with the barrier the owners get the
    // fast path, without it every lock is a spin lock (tested the same).
    EXPECT_EQ(EnableOwnerBiasedLocks(true), KernelHasExpeditedMembarrier());
  }
};

// What a thread state guards: two counters the owner bumps apart, which a
// holder must always find equal.
struct Guarded {
  OwnerBiasedLock lock;
  uint64_t a = 0;
  uint64_t b = 0;
};

TEST_F(OwnerBiasedLockTest, ClaimMakesTheCallerTheOnlyOwner) {
  Guarded g;
  EXPECT_FALSE(g.lock.HeldByOwnerPath());
  g.lock.Claim();
  EXPECT_EQ(g.lock.HeldByOwnerPath(), OwnerBiasedLocksEnabled());
  bool other = true;
  std::thread([&] { other = g.lock.HeldByOwnerPath(); }).join();
  EXPECT_FALSE(other);
  g.lock.Disown();
  EXPECT_FALSE(g.lock.HeldByOwnerPath());
}

TEST_F(OwnerBiasedLockTest, OwnersAndRemotesNeverOverlap) {
  constexpr int kOwners = 3;
  constexpr uint64_t kRounds = 300000;
  // The owners go on until the remote has taken their locks this often
  // (an owner's 300,000 takes last a few ms, less than a thread's start).
  constexpr uint64_t kMinTakes = 20000;
  Guarded states[kOwners];
  uint64_t done[kOwners] = {};
  std::atomic<uint64_t> takes{0};
  std::atomic<int> running{kOwners};
  std::vector<std::thread> owners;
  for (int k = 0; k < kOwners; ++k) {
    owners.emplace_back([&, k] {
      Guarded& g = states[k];
      g.lock.Claim();
      uint64_t i = 0;
      for (; i < kRounds || takes.load(std::memory_order_relaxed) < kMinTakes; ++i) {
        SpinLockHolder hold(&g.lock);
        ++g.a;
        // A remote inside now would see a != b.
        for (uint64_t spin = 0; spin < i % 8; ++spin) __asm__ volatile("");
        ++g.b;
      }
      done[k] = i;
      g.lock.Disown();
      running.fetch_sub(1);
    });
  }
  // The remote: takes each lock in turn (blocking and trying) and drains
  // the counters, as the writer thread flushes a chunk.
  uint64_t drained[kOwners] = {};
  uint64_t torn = 0;
  for (uint64_t turn = 0; running.load() > 0; ++turn) {
    for (int k = 0; k < kOwners; ++k) {
      Guarded& g = states[k];
      if (turn % 2 == 0) {
        g.lock.Lock();
      } else if (!g.lock.TryLock()) {
        continue;
      }
      takes.fetch_add(1, std::memory_order_relaxed);
      if (g.a != g.b) ++torn;
      drained[k] += g.a;
      g.a = g.b = 0;
      g.lock.Unlock();
    }
  }
  for (std::thread& t : owners) t.join();
  EXPECT_EQ(torn, 0u);
  EXPECT_GE(takes.load(), kMinTakes);
  for (int k = 0; k < kOwners; ++k) {
    EXPECT_GE(done[k], kRounds) << k;
    EXPECT_EQ(drained[k] + states[k].a, done[k]) << k;
    EXPECT_EQ(states[k].a, states[k].b) << k;
  }
  EXPECT_EQ(OwnerLockBarrierFallbacks(), 0u);
}

TEST_F(OwnerBiasedLockTest, OwnerWaitsWhileARemoteHolds) {
  Guarded g;
  std::atomic<bool> claimed{false}, go{false}, entered{false};
  std::thread owner([&] {
    g.lock.Claim();
    claimed = true;
    while (!go.load()) {
    }
    SpinLockHolder hold(&g.lock);
    entered = true;
    ++g.a;
  });
  while (!claimed.load()) {
  }
  g.lock.Lock();  // remote
  go = true;
  usleep(20000);
  EXPECT_FALSE(entered.load());  // never inside while we hold it
  g.a = 100;
  g.lock.Unlock();
  owner.join();
  EXPECT_TRUE(entered.load());
  EXPECT_EQ(g.a, 101u);
}

TEST_F(OwnerBiasedLockTest, RemoteTryLockGivesUpWhileTheOwnerIsInside) {
  Guarded g;
  std::atomic<int> step{0};
  std::thread owner([&] {
    g.lock.Claim();
    g.lock.Lock();
    step = 1;
    while (step.load() != 2) {
    }
    g.lock.Unlock();
    step = 3;
    while (step.load() != 4) {
    }
    // After the remote's failed try, the owner still gets in at once.
    g.lock.Lock();
    ++g.a;
    g.lock.Unlock();
    g.lock.Disown();
  });
  while (step.load() != 1) {
  }
  EXPECT_FALSE(g.lock.TryLock());
  step = 2;
  while (step.load() != 3) {
  }
  ASSERT_TRUE(g.lock.TryLock());
  g.lock.Unlock();
  step = 4;
  owner.join();
  EXPECT_EQ(g.a, 1u);
}

// Thread states are recycled: a lock is owned by one thread after another
// while a remote keeps taking it.
TEST_F(OwnerBiasedLockTest, OwnershipPassesBetweenThreads) {
  Guarded g;
  std::atomic<bool> done{false};
  uint64_t drained = 0, torn = 0;
  std::thread remote([&] {
    while (!done.load()) {
      SpinLockHolder hold(&g.lock);
      if (g.a != g.b) ++torn;
      drained += g.a;
      g.a = g.b = 0;
    }
  });
  constexpr int kGenerations = 40;
  constexpr uint64_t kRounds = 20000;
  for (int gen = 0; gen < kGenerations; ++gen) {
    std::thread([&] {
      g.lock.Claim();
      for (uint64_t i = 0; i < kRounds; ++i) {
        SpinLockHolder hold(&g.lock);
        ++g.a;
        ++g.b;
      }
      g.lock.Disown();
    }).join();
  }
  done = true;
  remote.join();
  EXPECT_EQ(torn, 0u);
  EXPECT_EQ(drained + g.a, kGenerations * kRounds);
}

// fork() while the owner and a remote are busy: the child resets the lock
// and both sides take it there.
TEST_F(OwnerBiasedLockTest, ForkChildResets) {
  Guarded g;
  g.lock.Claim();
  std::atomic<bool> done{false};
  std::thread remote([&] {
    while (!done.load()) {
      SpinLockHolder hold(&g.lock);
      g.a = g.b;
    }
  });
  for (int i = 0; i < 20; ++i) {
    g.lock.Lock();  // the owner holds it across fork, like the prepare handler
    pid_t pid = fork();
    if (pid == 0) {
      g.lock.ResetInChild(/*keep_owner=*/true);
      bool owner = g.lock.HeldByOwnerPath() == OwnerBiasedLocksEnabled();
      g.lock.Lock();
      g.lock.Unlock();
      bool remote_ok = false;
      std::thread([&] {
        remote_ok = g.lock.TryLock();
        if (remote_ok) g.lock.Unlock();
      }).join();
      _exit(owner && remote_ok ? 0 : 1);
    }
    g.lock.Unlock();
    ASSERT_GT(pid, 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  done = true;
  remote.join();
  g.lock.Disown();
}

}  // namespace
}  // namespace heapsight::preload
