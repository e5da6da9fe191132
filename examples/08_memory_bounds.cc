// examples/08_memory_bounds.cc: lesson 8, memory bounds and OOM prevention.
//
// A producer enqueues kMessages 64 KiB messages while a slow consumer
// drains them: it takes one message for every kSlowdown the producer has
// pushed (a pace set by counts, not by sleeps, so a loaded machine cannot
// let it keep up), or whatever is left once the producer is done.
//   costly:   an unbounded queue: the backlog grows until memory runs out.
//             Under a heap limit (heapsight record --heap-limit 64M) the
//             allocation fails like a real OOM: std::bad_alloc is thrown,
//             caught here, and the program reports it and exits 3.
//   improved: a bounded queue of kCapacity messages: the producer waits when
//             it is full, so the heap never exceeds ~kCapacity x 64 KiB.
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "example_util.h"

namespace {

constexpr int kMessages = 2000;            // 125 MiB if all were queued
constexpr size_t kMessageBytes = 64 * 1024;
constexpr size_t kCapacity = 16;           // bounded: at most 1 MiB queued
constexpr size_t kSlowdown = 4;            // the consumer's pace: 1 per 4 pushed

class MessageQueue {
 public:
  explicit MessageQueue(size_t capacity) : capacity_(capacity) {}

  void Push(std::vector<char> message) {
    std::unique_lock<std::mutex> lock(mu_);
    if (capacity_ != 0) not_full_.wait(lock, [&] { return queue_.size() < capacity_; });
    queue_.push_back(std::move(message));
    ++pushed_;
    not_empty_.notify_one();
  }
  bool Pop(std::vector<char>* out) {
    std::unique_lock<std::mutex> lock(mu_);
    // The slow consumer: the (popped_ + 1)th message is taken once
    // kSlowdown x that many were pushed. A bounded queue that is full
    // lets it go on (the producer is waiting for room, so waiting for
    // more pushes would wait for ever), and so does the end of the input.
    not_empty_.wait(lock, [&] {
      if (closed_) return true;
      if (queue_.empty()) return false;
      bool full = capacity_ != 0 && queue_.size() >= capacity_;
      return full || pushed_ >= kSlowdown * (popped_ + 1);
    });
    if (queue_.empty()) return false;
    *out = std::move(queue_.front());
    queue_.pop_front();
    ++popped_;
    not_full_.notify_one();
    return true;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<std::vector<char>> queue_;
  size_t capacity_;  // 0 = unbounded
  size_t pushed_ = 0, popped_ = 0;
  bool closed_ = false;
};

HS_NOINLINE std::vector<char> MakeMessage(int i) {
  return std::vector<char>(kMessageBytes, static_cast<char>(i));
}

HS_NOINLINE void Consume(MessageQueue* queue) {
  std::vector<char> message;
  // Pop paces itself (one message per kSlowdown pushed): the unbounded
  // backlog is at least 3/4 of what is produced, past 64 MiB by about the
  // 1,400th message, on any machine at any load.
  while (queue->Pop(&message)) examples::KeepAlive(message[0]);
}

HS_NOINLINE bool Produce(MessageQueue* queue) {
  try {
    for (int i = 0; i < kMessages; ++i) queue->Push(MakeMessage(i));
  } catch (const std::bad_alloc&) {
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  examples::Mode mode;
  if (!examples::ParseMode(argc, argv, &mode)) return 2;
  MessageQueue queue(mode == examples::Mode::kCostly ? 0 : kCapacity);
  std::thread consumer(Consume, &queue);
  bool ok = Produce(&queue);
  queue.Close();
  consumer.join();
  if (!ok) {
    std::puts("out of memory: producer stopped, backlog dropped");
    return 3;
  }
  std::puts("all messages processed");
  return 0;
}
