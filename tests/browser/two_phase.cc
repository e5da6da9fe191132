// tests/browser/two_phase.cc: a program whose heap is two flat steps, for the
// HTML chart's browser test (html_page_test.py): it holds 10,000,000 bytes
// for ~300 ms, then 30,000,000 bytes for ~300 ms, then frees everything.
// Markers with hostile names (heapsight_marker) mark the phases.
//
//   two_phase            the two phases
//   two_phase family     forks a child that allocates (and does not free)
//                        64 KiB and then execs `two_phase small`, then runs
//                        the two phases: a fork/exec family of three traces
//   two_phase small      1,000,000 bytes for ~50 ms, 100 bytes not freed
//
// Its source file name, set by #line below (no '/': reports show
// basenames), and its template's name hold '<script>', '<img onerror>',
// quotes and '&': every report must escape them. (argv can add more: the
// test passes a hostile argument.)
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "heapsight.h"

#line 30 "two_phase<script>heapsightPwned=1<img src=x onerror=heapsightPwned=1>\"'&.cc"

namespace phases {

char* volatile g_sink;

template <typename Tag>
struct Holder {
  // Touches every byte so the pages are real (RSS follows the heap).
  // Not inlined, and the block goes through a volatile global: the
  // compiler may not elide a malloc/free pair it can see whole.
  __attribute__((noinline)) static char* Hold(size_t bytes) {
    g_sink = static_cast<char*>(std::malloc(bytes));
    char* p = g_sink;
    if (p != nullptr) std::memset(p, 1, bytes);
    return p;
  }
};
struct Amp;  // the tag's name: '&' and '<...>' in the demangled frame
}  // namespace phases
// The second phase's tag, in the global namespace: its frame's demangled
// name is "phases::Holder<script>::Hold(unsigned long)".
struct script;
namespace phases {

// Globals, so the blocks stay reachable and the compiler keeps them.
char* volatile g_kept;
char* volatile g_dropped;

void Sleep(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

__attribute__((noinline)) void TwoPhases() {
  heapsight_marker("phase 1 <b>10 MB</b> & \"quoted\"");
  char* first = Holder<Amp&>::Hold(10'000'000);
  Sleep(300);
  heapsight_marker("phase 2 <script>window.heapsightPwned=2</script>");
  char* second = Holder<script>::Hold(20'000'000);
  Sleep(300);
  std::free(second);
  std::free(first);
}

__attribute__((noinline)) void Small() {
  char* block = Holder<Amp>::Hold(1'000'000);
  Sleep(50);
  std::free(block);
  g_kept = static_cast<char*>(std::malloc(100));  // not freed at exit
}

}  // namespace phases

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "small") == 0) {
    phases::Small();
    return 0;
  }
  if (argc > 1 && std::strcmp(argv[1], "family") == 0) {
    pid_t child = fork();
    if (child == 0) {
      // Not freed: the kernel discards it at exec; it is no leak.
      phases::g_dropped = phases::Holder<phases::Amp>::Hold(65536);
      execl("/proc/self/exe", argv[0], "small", static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  }
  phases::TwoPhases();
  return 0;
}
