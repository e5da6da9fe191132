// tests/support/run_traced.cc: see run_traced.h.
#include "tests/support/run_traced.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "format/trace_reader.h"

extern char** environ;

namespace heapsight::testing {
namespace {

RunResult Run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              const std::string& trace_dir) {
  RunResult result;
  std::string dir = MakeTempDir();
  std::string out_path = dir + "/stdout", err_path = dir + "/stderr";

  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq != nullptr) merged[std::string(*e, static_cast<size_t>(eq - *e))] = eq + 1;
  }
  merged.erase("LD_PRELOAD");
  for (auto it = merged.begin(); it != merged.end();) {
    it = it->first.rfind("HEAPSIGHT_", 0) == 0 ? merged.erase(it) : std::next(it);
  }
  for (const auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);

  pid_t pid = fork();
  if (pid == 0) {
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  if (!trace_dir.empty()) {
    if (DIR* d = opendir(trace_dir.c_str())) {
      while (dirent* ent = readdir(d)) {
        std::string name = ent->d_name;
        if (name.size() > 4 && name.substr(name.size() - 4) == ".hst") {
          result.traces.push_back(trace_dir + "/" + name);
        }
      }
      closedir(d);
    }
    std::sort(result.traces.begin(), result.traces.end());
  }
  return result;
}

}  // namespace

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string BuildPath(const std::string& relative) {
  return std::string(HEAPSIGHT_BUILD_ROOT) + "/" + relative;
}
std::string SourcePath(const std::string& relative) {
  return std::string(HEAPSIGHT_SOURCE_ROOT) + "/" + relative;
}

std::string MakeTempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base ? base : "/tmp") + "/heapsight-test.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) abort();
  return buf.data();
}

RunResult RunTraced(const std::vector<std::string>& argv, const std::string& out_dir,
                    const std::map<std::string, std::string>& env) {
  std::map<std::string, std::string> e = env;
  e["LD_PRELOAD"] = BuildPath("preload/libheapsight.so");
  if (e.find("HEAPSIGHT_OUTPUT") == e.end()) e["HEAPSIGHT_OUTPUT"] = out_dir + "/%e.%p.hst";
  return Run(argv, e, out_dir);
}

RunResult RunPlain(const std::vector<std::string>& argv,
                   const std::map<std::string, std::string>& env) {
  return Run(argv, env, "");
}

TraceContents ReadTrace(const std::string& path) {
  TraceContents t;
  auto reader = format::TraceReader::Open(path);
  if (!reader.ok()) {
    t.error = std::string(reader.status().message());
    return t;
  }
  t.header = (*reader)->header();
  std::vector<uint8_t> chunk;
  std::vector<std::vector<uint8_t>> chunks;
  while ((*reader)->NextChunk(&chunk)) chunks.push_back(chunk);
  t.truncated = (*reader)->truncated();
  if (!(*reader)->status().ok()) t.error = std::string((*reader)->status().message());
  for (const auto& c : chunks) {
    format::ChunkDecoder decoder(c.data(), c.size(), format::HasCompactFrees(t.header),
                                 format::HasAddressFrees(t.header));
    format::Record r;
    while (decoder.Next(&r)) {
      if (r.tag == format::RecordTag::kStackNode) {
        t.stack_nodes[r.stack_node.node] = {r.stack_node.parent, r.stack_node.ip};
        continue;
      }
      if (r.tag == format::RecordTag::kEnd) t.complete = true;
      // Copy views out of the chunk buffer, which dies at the loop's end.
      // Two strings per record (empty where its kind has fewer).
      size_t strings = 0;
      format::ForEachStringField(r, [&](std::string_view& view) {
        t.strings.emplace_back(view);
        view = {};
        ++strings;
      });
      for (; strings < 2; ++strings) t.strings.emplace_back();
      r.process.argv.clear();
      t.records.push_back(r);
    }
    if (!decoder.ok() && t.error.empty()) t.error = decoder.error();
  }
  return t;
}

ForkTraces ReadForkTraces(const std::vector<std::string>& traces) {
  ForkTraces f;
  if (traces.size() != 2) {
    f.error = "expected 2 traces, found " + std::to_string(traces.size());
    return f;
  }
  TraceContents a = ReadTrace(traces[0]);
  TraceContents b = ReadTrace(traces[1]);
  for (const TraceContents* t : {&a, &b}) {
    if (!t->error.empty() && f.error.empty()) f.error = t->error;
  }
  const bool a_child = (a.header.flags & format::kFileFlagForkChild) != 0;
  const bool b_child = (b.header.flags & format::kFileFlagForkChild) != 0;
  if (a_child == b_child && f.error.empty()) {
    f.error = a_child ? "both traces are fork children" : "neither trace is a fork child";
  }
  f.parent_path = traces[a_child ? 1 : 0];
  f.child_path = traces[a_child ? 0 : 1];
  f.parent = std::move(a_child ? b : a);
  f.child = std::move(a_child ? a : b);
  return f;
}

TraceCounts CountTrace(const TraceContents& trace) {
  TraceCounts c;
  // Two passes: chunks of different threads land in the file in flush
  // order, so a free can precede the allocation it names. Collect every
  // allocated id first, then pair the frees.
  std::unordered_map<uint64_t, uint64_t> live;  // id -> size
  for (const auto& r : trace.records) {
    switch (r.tag) {
      case format::RecordTag::kAlloc:
        ++c.alloc_records;
        ++c.allocs[r.api];
        c.bytes_allocated += r.size;
        live[r.id] = r.size;
        break;
      case format::RecordTag::kInherited:
        live[r.id] = r.size;
        break;
      case format::RecordTag::kRealloc:
        ++c.realloc_records;
        ++c.allocs[r.api];
        c.bytes_allocated += r.size;
        live[r.id] = r.size;
        break;
      case format::RecordTag::kAllocFailed:
        ++c.failed;
        break;
      default:
        break;
    }
  }
  auto release = [&](uint64_t id) {
    auto it = live.find(id);
    if (it == live.end()) {
      ++c.unmatched_frees;
      return;
    }
    live.erase(it);
  };
  for (const auto& r : trace.records) {
    if (r.tag == format::RecordTag::kFree) {
      ++c.free_records;
      ++c.frees[r.api];
      release(r.id);
    } else if (r.tag == format::RecordTag::kRealloc) {
      ++c.frees[r.api];
      release(r.old_id);
    }
  }
  for (const auto& [id, size] : live) {
    ++c.live_blocks;
    c.live_bytes += size;
  }
  return c;
}

}  // namespace heapsight::testing
