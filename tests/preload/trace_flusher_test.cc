// tests/preload/trace_flusher_test.cc: the writer thread (preload/
// trace_flusher.h) on its own, with the thread registry and tracer state
// stood in for: it starts at the first hand-over of an active trace only,
// writes handed-over chunks in order, runs FLUSH_MS's freshness pass, is
// stopped and joined (its chunks written, the spool removed, every later
// chunk inline), falls back inline when the spool is full, and a fork
// child neither touches the parent's spool nor starts a writer inside its
// fork handler. Each test runs in a child process (the writer's state is
// process-wide and stopping it is for good).
#include "preload/trace_flusher.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "format/trace_format.h"
#include "preload/reentry_guard.h"
#include "preload/thread_capture.h"
#include "preload/thread_state.h"
#include "preload/trace_writer.h"
#include "preload/tracer_state.h"
#include "tests/support/run_traced.h"

// Stand-ins for the rest of the preload.
namespace heapsight::preload {
std::atomic<int> g_tracing_status{kUninit};
constinit thread_local int t_reentry_depth __attribute__((tls_model("initial-exec"))) = 0;
std::atomic<int> g_write_errors{0};
std::atomic<int> g_stale_passes{0};
void OnWriteError(int) { g_write_errors.fetch_add(1); }
void FlushStaleThreads(uint64_t, uint64_t) { g_stale_passes.fetch_add(1); }
std::atomic<pid_t> g_exempt_tid{0};
void ExemptFromCapture(int, pid_t tid) { g_exempt_tid.store(tid); }
}  // namespace heapsight::preload

namespace heapsight::preload {
namespace {

constexpr size_t kChunk = 4096;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

void OpenTraceIn(const std::string& dir) {
  format::FileHeader h{};
  std::memcpy(h.magic, format::kFileMagic, sizeof h.magic);
  h.version = format::kFormatVersion;
  h.header_size = sizeof h;
  ASSERT_EQ(OpenTrace((dir + "/t.hst").c_str(), h), 0);
}

std::vector<uint8_t> Chunk(uint64_t sequence) {
  std::vector<uint8_t> c(1200, static_cast<uint8_t>(sequence));
  format::ChunkHeader h{};
  h.thread_index = 3;
  h.sequence = sequence;
  std::memcpy(c.data(), &h, sizeof h);
  return c;
}

bool HandOff(uint64_t sequence) {
  std::vector<uint8_t> c = Chunk(sequence);
  return HandOffChunk(c.data(), c.size());
}

std::vector<uint64_t> Sequences(const std::string& path) {
  std::string bytes = testing::ReadFile(path);
  std::vector<uint64_t> out;
  size_t at = sizeof(format::FileHeader);
  while (at + sizeof(format::BlockHeader) <= bytes.size()) {
    format::BlockHeader b;
    std::memcpy(&b, bytes.data() + at, sizeof b);
    if (b.magic != format::kBlockMagic) break;
    out.push_back(b.chunk.sequence);
    at += sizeof b + b.payload_size;
  }
  return out;
}

template <typename F>
bool WaitFor(F done) {
  for (int i = 0; i < 500 && !done(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

// Runs `body` in a child process; the test fails if the child does.
template <typename F>
void InChild(F body) {
  pid_t pid = fork();
  if (pid == 0) {
    body();
    _exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

TEST(TraceFlusher, WritesHandedOverChunksAndStopsForGood) {
  InChild([] {
    std::string dir = testing::MakeTempDir();
    OpenTraceIn(dir);
    unsetenv("_HEAPSIGHT_TEST_WRITER");
    ConfigureFlusher(3, 0, kChunk);
    // Not tracing yet: no writer, the caller writes inline.
    EXPECT_FALSE(HandOff(0));
    EXPECT_FALSE(FlusherRunning());
    g_tracing_status.store(kActive);
    for (uint64_t seq = 0; seq < 40; ++seq) {
      // The first hand-over starts the writer. A full spool (the writer
      // behind) makes a hand-over fail; the test then waits, as a caller
      // writing inline would not.
      while (!HandOff(seq)) {
        ASSERT_TRUE(FlusherRunning());
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    EXPECT_TRUE(FlusherRunning());
    EXPECT_TRUE(Exists(dir + "/t.hst.spool"));
    // The writer exempts itself from leak-scan stops while it runs.
    EXPECT_TRUE(WaitFor([] { return g_exempt_tid.load() != 0; }));
    EXPECT_NE(g_exempt_tid.load(), getpid());
    EXPECT_TRUE(WaitFor([&] { return Sequences(dir + "/t.hst").size() == 40; }));
    StopFlusher();
    EXPECT_FALSE(FlusherRunning());
    EXPECT_EQ(g_exempt_tid.load(), 0);
    std::vector<uint64_t> seqs = Sequences(dir + "/t.hst");
    ASSERT_EQ(seqs.size(), 40u);
    for (uint64_t i = 0; i < 40; ++i) EXPECT_EQ(seqs[i], i);  // one writer: hand-over order
    EXPECT_FALSE(Exists(dir + "/t.hst.spool"));
    // Stopped for good: later chunks are the caller's to write.
    EXPECT_FALSE(HandOff(40));
    StopFlusher();  // idempotent
    uint64_t handed = 0, fallbacks = 0, cpu = 0;
    FlusherCounts(&handed, &fallbacks, &cpu);
    EXPECT_EQ(handed, 40u);
    EXPECT_GT(cpu, 0u);  // measured when the writer stopped
    EXPECT_EQ(g_write_errors.load(), 0);
    // A failed exec lets a later hand-over start a new writer and spool.
    AllowFlusherRestart();
    EXPECT_FALSE(FlusherRunning());
    EXPECT_TRUE(HandOff(41));
    EXPECT_TRUE(FlusherRunning());
    EXPECT_TRUE(Exists(dir + "/t.hst.spool"));
    StopFlusher();
    EXPECT_FALSE(Exists(dir + "/t.hst.spool"));
    seqs = Sequences(dir + "/t.hst");
    ASSERT_EQ(seqs.size(), 41u);
    EXPECT_EQ(seqs.back(), 41u);
  });
}

TEST(TraceFlusher, AFullSpoolFallsBackInline) {
  InChild([] {
    std::string dir = testing::MakeTempDir();
    OpenTraceIn(dir);
    setenv("_HEAPSIGHT_TEST_WRITER", "paused", 1);  // the writer writes nothing
    ConfigureFlusher(3, 0, kChunk);
    g_tracing_status.store(kActive);
    int accepted = 0;
    for (uint64_t seq = 0; seq < 40; ++seq) accepted += HandOff(seq);
    EXPECT_EQ(accepted, 32);  // kSpoolSlots
    uint64_t handed = 0, fallbacks = 0, cpu = 0;
    FlusherCounts(&handed, &fallbacks, &cpu);
    EXPECT_EQ(handed, 32u);
    EXPECT_EQ(fallbacks, 8u);
    EXPECT_TRUE(Sequences(dir + "/t.hst").empty());
  });
}

TEST(TraceFlusher, FlushMsRunsTheFreshnessPass) {
  InChild([] {
    std::string dir = testing::MakeTempDir();
    OpenTraceIn(dir);
    unsetenv("_HEAPSIGHT_TEST_WRITER");
    ConfigureFlusher(3, 20, kChunk);  // a pass every 10 ms
    g_tracing_status.store(kActive);
    StartFlusherForFreshness();  // no chunk handed over yet
    EXPECT_TRUE(FlusherRunning());
    EXPECT_TRUE(WaitFor([] { return g_stale_passes.load() >= 3; }));
    StopFlusher();
    int after = g_stale_passes.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(g_stale_passes.load(), after);  // the thread is gone
  });
}

TEST(TraceFlusher, WithoutFlushMsNoThreadUntilAHandOver) {
  InChild([] {
    std::string dir = testing::MakeTempDir();
    OpenTraceIn(dir);
    unsetenv("_HEAPSIGHT_TEST_WRITER");
    ConfigureFlusher(3, 0, kChunk);
    g_tracing_status.store(kActive);
    StartFlusherForFreshness();
    EXPECT_FALSE(FlusherRunning());
    EXPECT_FALSE(Exists(dir + "/t.hst.spool"));
  });
}

TEST(TraceFlusher, AForkChildGetsNoWriterInsideTheHandler) {
  InChild([] {
    std::string dir = testing::MakeTempDir();
    OpenTraceIn(dir);
    setenv("_HEAPSIGHT_TEST_WRITER", "paused", 1);  // the parent's chunk stays sealed
    ConfigureFlusher(3, 0, kChunk);
    g_tracing_status.store(kActive);
    ASSERT_TRUE(HandOff(0));
    pid_t pid = fork();
    if (pid == 0) {
      ResetFlusherInChild();
      ForgetTraceInChild();
      bool ok = !HandOff(1) && !FlusherRunning();  // inside the fork handler: inline
      std::string child_dir = dir + "/child";
      mkdir(child_dir.c_str(), 0700);
      format::FileHeader h{};
      std::memcpy(h.magic, format::kFileMagic, sizeof h.magic);
      h.version = format::kFormatVersion;
      h.header_size = sizeof h;
      ok = ok && OpenTrace((child_dir + "/c.hst").c_str(), h) == 0;
      AllowFlusherInChild();
      ok = ok && HandOff(2) && FlusherRunning();  // a writer and spool of its own
      ok = ok && Exists(child_dir + "/c.hst.spool");
      _exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    // The parent's spool still holds its sealed chunk.
    EXPECT_TRUE(Exists(dir + "/t.hst.spool"));
    uint64_t handed = 0, fallbacks = 0, cpu = 0;
    FlusherCounts(&handed, &fallbacks, &cpu);
    EXPECT_EQ(handed, 1u);
  });
}

}  // namespace
}  // namespace heapsight::preload
