// preload/chunk_spool.h: the chunk spool, where full chunks wait for the
// writer thread (issue 15 target 3; layout in format/spool_format.h).
//
// The spool is a file beside the trace, "<trace>.spool", created
// O_EXCL|O_NOFOLLOW with mode 0600, sized to a fixed number of slots and
// mapped MAP_SHARED; its fd is closed at once (a daemon that closes every
// fd cannot take it from us, and the program never sees it). A thread whose
// chunk is full copies it into a free slot as a whole raw block
// (SpoolChunk, about 10 us for 128 KiB) and goes on; the writer thread
// (trace_flusher.h) claims sealed slots in hand-over order, compresses and
// writes them, and frees them. Because the slots are pages of a shared file
// mapping, a sealed chunk is in the page cache as soon as it is copied: a
// SIGKILL loses none of it, and the next reader of the trace appends it
// (format/spool_recovery.h). The flock taken at creation lives as long as
// the mapping, which tells a reader whether the writer is still alive.
//
// Slots are taken lowest index first, so a steady process reuses the same
// few slots and touches few pages of the file. The file's blocks are
// allocated when it is created (fallocate, 4.2 MiB): a store into a shared
// file mapping whose block cannot be allocated would be a SIGBUS in the
// program. Where fallocate fails, or RLIMIT_FSIZE is below the spool's
// size, there is no spool (and no writer thread).
//
// Constraints: no malloc; slot states change by compare-and-swap only.
// SpoolChunk is called on the program's threads under their state lock; it
// takes no lock and never waits (no free slot: false, and the caller writes
// the chunk itself). Mapping and unmapping (OpenSpool, CloseSpool) hold the
// spool lock, which fork's prepare handler takes too (sig23: a child must
// never unmap a range the parent had already unmapped and reused, see
// ForgetSpoolInChild); its holders take no other lock. Not
// async-signal-safe.
#ifndef HEAPSIGHT_PRELOAD_CHUNK_SPOOL_H_
#define HEAPSIGHT_PRELOAD_CHUNK_SPOOL_H_

#include <cstddef>
#include <cstdint>

namespace heapsight::preload {

inline constexpr uint32_t kSpoolSlots = 32;

// Creates and maps the spool of the open trace (TracePath() + ".spool"),
// with room for chunks of up to `max_chunk_bytes`. Returns 0 or an errno
// value (then there is no spool and every chunk is written inline).
int OpenSpool(size_t max_chunk_bytes);

// Copies the sealed chunk `chunk` (`raw_size` bytes, starting with its
// ChunkHeader) into a free slot as a raw block and publishes it. False if
// there is no spool or no free slot.
bool SpoolChunk(const uint8_t* chunk, size_t raw_size);

// Writes the sealed slot handed over first (compressed at `level` through
// WriteChunk, with `scratch` and `cctx_hint` as there) and frees it. Returns
// false if no slot was sealed; *err receives WriteChunk's result.
bool WriteOldestSealed(int level, uint8_t* scratch, int* cctx_hint, int* err);

// Slots a thread is still copying into (kFilling).
uint32_t SpoolSlotsFilling();

// True if every slot is free.
bool SpoolEmpty();

// Unmaps the spool; removes its file too when every slot is free (a chunk
// left in a slot stays for a reader to recover).
void CloseSpool();

// fork: the prepare handler holds the spool lock across the fork, so the
// child's g_map names exactly the mapping it has (or none). LockSpoolForFork
// gives up after 100,000 tries (a prepare handler nested in a signal handler
// that interrupted OpenSpool/CloseSpool on this very thread);
// UnlockSpoolAfterFork (parent) releases what it took.
void LockSpoolForFork();
void UnlockSpoolAfterFork();

// A fork child: the mapping is the parent's; unmap it without touching a
// byte (the parent's writer owns those slots) and forget it. If the
// prepare handler could not take the spool lock, the range may have been
// unmapped and reused by the parent meanwhile (another thread's CloseSpool
// racing the fork): it is forgotten, not unmapped.
void ForgetSpoolInChild();

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_CHUNK_SPOOL_H_
