// analyzer/model/task_gate.h: a one-shot go/no-go between threads. A helper
// thread that has optional work left waits at the gate (Wait); another
// thread decides once: Open (do the work) or Close (give it up). The first
// decision stands, so the owner may Close unconditionally before joining.
//
// The analysis uses it for the C/C++ runtime's debug info: the debug-info
// helper reads it only once the pass is far enough along that the report
// will surely still be waiting for the pass (trace_model.cc; a small
// trace's gate and a big trace's later one).
#ifndef HEAPSIGHT_ANALYZER_MODEL_TASK_GATE_H_
#define HEAPSIGHT_ANALYZER_MODEL_TASK_GATE_H_

#include <condition_variable>
#include <mutex>

namespace heapsight::analyzer {

class TaskGate {
 public:
  // Decides for the work (no effect once decided).
  void Open() { Decide(State::kOpen); }
  // Decides against it (no effect once decided).
  void Close() { Decide(State::kClosed); }
  // Blocks until decided; true if opened.
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return state_ != State::kPending; });
    return state_ == State::kOpen;
  }
  bool decided() const {
    std::lock_guard<std::mutex> lock(mu_);
    return state_ != State::kPending;
  }

 private:
  enum class State { kPending, kOpen, kClosed };
  void Decide(State s) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (state_ != State::kPending) return;
      state_ = s;
    }
    cv_.notify_all();
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::kPending;  // guarded by mu_
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_TASK_GATE_H_
