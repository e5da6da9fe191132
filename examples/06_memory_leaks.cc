// examples/06_memory_leaks.cc: lesson 6, memory leaks.
//
// Four classic leaks, each in its own function, and their fixes:
//   1. ForgottenDelete: `new Session` per login, never deleted
//      (kLogins x 128 bytes). Fixed: std::unique_ptr.
//   2. SharedCycle: two nodes holding shared_ptrs to each other are never
//      destroyed (kCycles x 2 control blocks with the nodes inside). Fixed:
//      the back pointer is a weak_ptr.
//   3. UnboundedCache: a global cache that only grows (kCacheInserts entries,
//      each a map node plus a 256-byte value). Still reachable at exit, but
//      it is memory nobody uses. Fixed: the cache is bounded to kCacheLimit
//      entries and evicts the oldest.
//   4. DetachedWorker: a detached thread that blocks forever holding a
//      1 MiB buffer. Fixed: the worker is stopped and joined.
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "example_util.h"

namespace {

constexpr int kLogins = 100;
constexpr int kCycles = 50;
constexpr int kCacheInserts = 2000;
constexpr size_t kCacheLimit = 100;
constexpr size_t kWorkerBytes = 1 << 20;

struct Session {
  char token[120];
  long user;
};
static_assert(sizeof(Session) == 128);

HS_NOINLINE void ForgottenDelete(examples::Mode mode) {
  for (int i = 0; i < kLogins; ++i) {
    if (mode == examples::Mode::kCostly) {
      Session* s = new Session{};
      s->user = i;
      examples::KeepAlive(*s);  // ... and the pointer is dropped
    } else {
      auto s = std::make_unique<Session>();
      s->user = i;
      examples::KeepAlive(*s);
    }
  }
}

struct Node {
  std::shared_ptr<Node> next;
  std::weak_ptr<Node> weak_next;
  char payload[64];
};

HS_NOINLINE void SharedCycle(examples::Mode mode) {
  for (int i = 0; i < kCycles; ++i) {
    auto a = std::make_shared<Node>();
    auto b = std::make_shared<Node>();
    a->next = b;
    if (mode == examples::Mode::kCostly) {
      b->next = a;  // cycle: neither count reaches zero
    } else {
      b->weak_next = a;  // back edge does not own
    }
  }
}

std::map<int, std::string>* g_cache = new std::map<int, std::string>();

HS_NOINLINE void UnboundedCache(examples::Mode mode) {
  for (int i = 0; i < kCacheInserts; ++i) {
    (*g_cache)[i] = std::string(256, 'v');
    if (mode == examples::Mode::kImproved && g_cache->size() > kCacheLimit) {
      g_cache->erase(g_cache->begin());  // keys are increasing: begin() is oldest
    }
  }
}

// A flag rather than a condition variable: a detached thread still waiting
// on a condition variable at exit would block its destructor in glibc.
std::atomic<bool> g_stop{false};

HS_NOINLINE void WorkerBody() {
  std::vector<char> scratch(kWorkerBytes, 'w');
  while (!g_stop.load(std::memory_order_acquire)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  examples::KeepAlive(scratch[0]);
}

HS_NOINLINE void DetachedWorker(examples::Mode mode) {
  std::thread worker(WorkerBody);
  // Give the worker time to allocate before main goes on.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (mode == examples::Mode::kCostly) {
    worker.detach();  // never told to stop: its buffer lives until exit
  } else {
    g_stop.store(true, std::memory_order_release);
    worker.join();
  }
}

}  // namespace

int main(int argc, char** argv) {
  examples::Mode mode;
  if (!examples::ParseMode(argc, argv, &mode)) return 2;
  ForgottenDelete(mode);
  SharedCycle(mode);
  UnboundedCache(mode);
  DetachedWorker(mode);
  if (mode == examples::Mode::kImproved) {
    delete g_cache;
    g_cache = nullptr;
  }
  return 0;
}
