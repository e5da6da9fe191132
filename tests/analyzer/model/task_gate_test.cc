// tests/analyzer/model/task_gate_test.cc: TaskGate's one decision: a waiter
// is released by Open (true) or Close (false), the first decision stands,
// and a waiter blocked on another thread sees it.
#include "analyzer/model/task_gate.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

TEST(TaskGateTest, TheFirstDecisionStands) {
  TaskGate opened;
  EXPECT_FALSE(opened.decided());
  opened.Open();
  opened.Close();  // the owner closes before joining: no effect now
  EXPECT_TRUE(opened.decided());
  EXPECT_TRUE(opened.Wait());
  EXPECT_TRUE(opened.Wait());

  TaskGate closed;
  closed.Close();
  closed.Open();
  EXPECT_TRUE(closed.decided());
  EXPECT_FALSE(closed.Wait());
}

TEST(TaskGateTest, AWaiterOnAnotherThreadSeesTheDecision) {
  for (bool open : {true, false}) {
    TaskGate gate;
    std::atomic<int> result{-1};
    std::thread waiter([&] { result = gate.Wait() ? 1 : 0; });
    // The waiter cannot have returned: nothing is decided yet.
    EXPECT_EQ(result.load(), -1);
    if (open) {
      gate.Open();
    } else {
      gate.Close();
    }
    waiter.join();
    EXPECT_EQ(result.load(), open ? 1 : 0);
  }
}

}  // namespace
}  // namespace heapsight::analyzer
