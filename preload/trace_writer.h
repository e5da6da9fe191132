// preload/trace_writer.h: the trace file: creation, fd protection, blocks.
//
// The file is created once (O_CREAT|O_EXCL|O_NOFOLLOW, 0600, O_APPEND), its
// fd moved to a high number (500, or just below a low RLIMIT_NOFILE), and its
// device/inode remembered; it is the one fd the preload keeps. Before every
// write the fd is checked with fstat: if the program closed it, or dup2'd
// something else over it, the file is reopened by absolute path (and its
// device/inode verified), so we never write into the program's files and a
// program that closes every fd still gets a complete trace. The trace fd is
// closed only while it is still ours (a fork child's copy).
//
// Each block is written with one write(2) on the O_APPEND fd, so blocks of
// different threads never interleave. A file lock (spin lock) serializes the
// fstat+write pair; it is taken once per 128 KiB chunk, not per event.
//
// Compression uses a small pool of zstd contexts whose memory comes from
// mmap (ZSTD_createCCtx_advanced with a custom allocator), so zstd never
// calls malloc.
//
// Constraints: no malloc; errors are returned (errno-style), the caller
// decides to disable tracing. Not async-signal-safe.
#ifndef HEAPSIGHT_PRELOAD_TRACE_WRITER_H_
#define HEAPSIGHT_PRELOAD_TRACE_WRITER_H_

#include <cstddef>
#include <cstdint>

#include "format/trace_format.h"

namespace heapsight::preload {

// Room callers leave in front of a chunk for its BlockHeader.
inline constexpr size_t kBlockHeaderRoom = sizeof(format::BlockHeader);

// Expands %p, %e and %% of `pattern` into `out` (absolute: relative results
// are joined to `start_dir`). False if it does not fit.
bool ExpandOutputPattern(const char* pattern, const char* start_dir, const char* exe_path,
                         uint64_t pid, char* out, size_t out_size);

// Creates the trace file for `path_base` (adding .1, .2, ... before ".hst"
// if it exists) and writes `header`. Returns 0 or an errno value.
int OpenTrace(const char* path_base, const format::FileHeader& header);

// Path of the open trace ("" before OpenTrace succeeds).
const char* TracePath();

// Appends "<trace path>\0" to `manifest`, an existing file of ours in a
// directory only we can enter (see HEAPSIGHT_MANIFEST); never creates it.
void AppendToManifest(const char* manifest);

// Writes one block. `chunk` points at raw_size bytes of chunk and has
// kBlockHeaderRoom writable bytes before it. `scratch` has room for
// kBlockHeaderRoom + CompressBound(raw_size). level 0 = store raw.
// `cctx_hint` is the caller's slot in the zstd context pool (any
// non-negative number at first, e.g. the thread index; -1 for none; updated),
// so each thread keeps compressing with the same, cache-warm context. Returns 0 or an errno value.
int WriteChunk(uint8_t* chunk, size_t raw_size, int level, uint8_t* scratch, int* cctx_hint);

size_t CompressBound(size_t raw_size);

// `heapsight detach` (issue 19): closes the trace (our fd, if still ours).
// Later writes (a thread's event racing the detach) are dropped and
// succeed, so they never disable tracing; the next OpenTrace starts a new
// file.
void CloseTrace();

// For fork: hold the file lock across fork(); the child forgets the parent's
// file (ForgetTraceInChild) before opening its own.
void LockWriter();
void UnlockWriter();
void ForgetTraceInChild();

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_TRACE_WRITER_H_
