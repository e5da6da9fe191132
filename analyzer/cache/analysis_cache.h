// analyzer/cache/analysis_cache.h: the persistent analysis cache, so that
// `report`, then `leaks`, then `html` on one trace read it once.
//
// AnalyzeTraceCached answers AnalyzeTrace's question from a cache file when
// one matches, and otherwise analyzes the trace and writes one. The file
// sits next to the trace (heapsight.prog.123.hst -> heapsight.prog.123.hst.cache;
// options other than the defaults add a key: ...hst.<16 hex>.cache) or,
// when the trace's directory is not writable, in $XDG_CACHE_HOME/heapsight
// (~/.cache/heapsight). It holds one analysis (profile_codec.h), compressed
// with zstd (with its checksum), and what it was made from:
//  - heapsight's version and the codec's schema tag;
//  - the options that change the analysis (--at's moment, runtime
//    classification, the growth window); growth is always tracked in a
//    cached analysis, so report, leaks, diff, growth and html share one file;
//  - the trace: size, mtime (ns), inode, device, and a hash of its first
//    4 KiB and last 64 KiB; for a version-6 fork child, the same of its
//    parent's trace, whose blocks its analysis reads (fork_inheritance.h);
//  - every module the trace names: its path's size, mtime (ns) and inode
//    (or that it was missing), so a rebuilt library is symbolized afresh.
// Any difference is a miss. A cache file is untrusted input: it is read
// only if it is a regular file (not followed through a symlink) owned by
// this user and writable by no one else, and every byte is bounds-checked;
// a truncated or corrupted one is ignored and replaced. Files are written
// to a fresh 0600 temporary (O_EXCL) and renamed over the old one, so
// readers never see half a file and a symlink at the cache path is
// replaced, never followed. Failing to write is never an error.
#ifndef HEAPSIGHT_ANALYZER_CACHE_ANALYSIS_CACHE_H_
#define HEAPSIGHT_ANALYZER_CACHE_ANALYSIS_CACHE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer::cache {

// The environment variable that turns the cache off (any value but "" or "0").
inline constexpr char kNoCacheEnv[] = "HEAPSIGHT_NO_CACHE";

struct CacheOptions {
  bool enabled = true;
  // Where a cache goes when the trace's directory is not writable; ""
  // means $XDG_CACHE_HOME/heapsight, else $HOME/.cache/heapsight.
  std::string fallback_dir;
};

// What happened to the cache for one trace (for tests and --verbose users).
enum class CacheOutcome {
  kBypassed,  // disabled, or the trace is not a regular file (stdin, a pipe)
  kHit,       // answered from a cache file
  kMiss,      // analyzed; a cache file was written
  kMissUnwritten,  // analyzed; no cache file could be written
};

// AnalyzeTrace(path, options), from the cache when it matches. The result
// is the same profile AnalyzeTrace gives (trace_path is `path`). Errors are
// AnalyzeTrace's: a cache problem only means a miss.
absl::StatusOr<ProcessProfile> AnalyzeTraceCached(const std::string& path,
                                                  const AnalyzeOptions& options,
                                                  const CacheOptions& cache = {},
                                                  CacheOutcome* outcome = nullptr);

// The cache files that may hold `path`'s analysis with `options`, in the
// order they are tried: next to the trace, then in the fallback directory.
std::vector<std::string> CacheFileCandidates(const std::string& path,
                                             const AnalyzeOptions& options,
                                             const CacheOptions& cache = {});

// True unless the environment turns the cache off (kNoCacheEnv).
bool CacheEnabledByEnvironment();

}  // namespace heapsight::analyzer::cache

#endif  // HEAPSIGHT_ANALYZER_CACHE_ANALYSIS_CACHE_H_
