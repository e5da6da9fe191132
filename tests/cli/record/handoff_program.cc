// tests/cli/record/handoff_program.cc: two threads take turns at the same
// few addresses: in each of 32 turns a thread allocates and frees a 200 kB
// block 37 times (mmap'd and unmapped by malloc: the kernel gives the same
// address back), then passes the turn. Each address thus has runs of 74
// events of one thread between hand-offs to the other, what an
// address-frees trace (HEAPSIGHT_PAIRING=address) pairs only in time order:
// read thread by thread, a hand-off's 4-bit count (format::AddressOrder)
// can match in the middle of the other thread's run. Frees every block;
// prints one line.
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdlib>

namespace {

constexpr int kTurns = 32;
constexpr int kRun = 37;
constexpr size_t kSize = 200000;

pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_changed = PTHREAD_COND_INITIALIZER;
int g_turn = 0;
void* volatile g_sink;

void* Worker(void* arg) {
  const int self = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  for (int turn = self; turn < 2 * kTurns; turn += 2) {
    pthread_mutex_lock(&g_lock);
    while (g_turn != turn) pthread_cond_wait(&g_changed, &g_lock);
    pthread_mutex_unlock(&g_lock);
    for (int i = 0; i < kRun; ++i) {
      void* p = std::malloc(kSize);
      g_sink = p;
      std::free(p);
    }
    pthread_mutex_lock(&g_lock);
    ++g_turn;
    pthread_cond_broadcast(&g_changed);
    pthread_mutex_unlock(&g_lock);
  }
  return nullptr;
}

}  // namespace

int main() {
  // A fixed threshold: every block of kSize is mmap'd (glibc would
  // otherwise raise the threshold at the first free and use the heap).
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  pthread_t threads[2];
  for (intptr_t i = 0; i < 2; ++i) {
    pthread_create(&threads[i], nullptr, Worker, reinterpret_cast<void*>(i));
  }
  for (pthread_t t : threads) pthread_join(t, nullptr);
  const char line[] = "handed off\n";
  return write(1, line, sizeof line - 1) == sizeof line - 1 ? 0 : 1;
}
