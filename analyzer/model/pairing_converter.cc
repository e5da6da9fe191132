// analyzer/model/pairing_converter.cc: see pairing_converter.h.
#include "analyzer/model/pairing_converter.h"

#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <optional>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "format/trace_reader.h"

namespace heapsight::analyzer {

using format::Record;
using format::RecordTag;

PairingConverter::PairingConverter(std::string in_name, int out_fd, std::string out_name,
                                   int zstd_level, bool fork_child)
    : in_name_(std::move(in_name)),
      fd_(out_fd),
      name_(std::move(out_name)),
      zstd_level_(zstd_level),
      // No slack (a held event waits until it is consistent: in a growing
      // trace, a chunk can come later than the watermark wanted), room
      // for many held.
      pairer_(fork_child, /*hold_slack_us=*/0, /*max_held=*/size_t{1} << 20),
      merge_(in_name_) {}

PairingConverter::~PairingConverter() {
  if (cctx_ != nullptr) ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_));
}

absl::StatusOr<std::unique_ptr<PairingConverter>> PairingConverter::Create(
    const format::FileHeader& in, std::string in_name, int out_fd, std::string out_name,
    int zstd_level, const InheritedBlocks* inherited) {
  if (!format::HasAddressFrees(in)) {
    return absl::FailedPreconditionError("the trace has no address frees (it is not version 6)");
  }
  const bool fork_child = (in.flags & format::kFileFlagForkChild) != 0;
  if (fork_child && inherited == nullptr) {
    // Its kInherited name the parent's blocks by address: without them the
    // converted trace would freeze blocks without stacks, which the
    // version-6 analysis at least warns about.
    return absl::FailedPreconditionError(
        "a fork child's trace stays version 6 without its parent's blocks (its inherited "
        "blocks are resolved from the parent's addresses)");
  }
  auto c = std::unique_ptr<PairingConverter>(new PairingConverter(
      std::move(in_name), out_fd, std::move(out_name), zstd_level, fork_child));
  if (fork_child) {
    c->inherited_ = *inherited;
    c->pairer_.SetInheritance(&c->inherited_);
  }
  format::FileHeader h = in;
  h.flags &= ~format::kFileFlagAddressFrees;
  h.version = format::FormatVersionFor(h.flags);
  h.header_size = sizeof h;
  if (absl::Status s = c->WriteAll(&h, sizeof h); !s.ok()) return s;
  c->stats_.bytes_out = sizeof h;
  if (zstd_level > 0) {
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    if (cctx == nullptr) return absl::ResourceExhaustedError("no memory for a zstd context");
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, zstd_level);
    c->cctx_ = cctx;
  }
  return c;
}

PairingConverter::ThreadOut& PairingConverter::Thread(uint32_t index) {
  if (last_thread_ != nullptr && last_index_ == index) return *last_thread_;
  std::unique_ptr<ThreadOut>& t = threads_[index];
  if (t == nullptr) t = std::make_unique<ThreadOut>();
  last_index_ = index;
  last_thread_ = t.get();
  return *t;
}

void PairingConverter::Open(uint32_t index, ThreadOut& t, uint64_t time_us) {
  if (t.open) return;
  if (t.buffer.size() < kChunkBytes) t.buffer.resize(kChunkBytes);
  format::ChunkHeader h{};
  h.thread_index = index;
  h.tid = t.tid;
  h.sequence = t.sequence;
  // The first record's time: a lower bound of the chunk's times, as the
  // preload's chunk start is.
  h.base_time_us = time_us;
  h.first_alloc_counter = t.next_counter;
  t.encoder.Begin(t.buffer.data(), t.buffer.size(), h);
  t.last_time = time_us;
  t.open = true;
}

absl::Status PairingConverter::Close(ThreadOut& t) {
  if (!t.open) return absl::OkStatus();
  t.open = false;
  if (t.encoder.empty()) return absl::OkStatus();
  const size_t size = t.encoder.Seal();
  ++t.sequence;
  ++stats_.chunks_out;
  return WriteBlock(t.encoder.data(), size);
}

template <typename Put>
absl::Status PairingConverter::Encode(uint32_t index, ThreadOut& t, uint64_t time_us,
                                      bool timed, Put&& put) {
  if (!timed) {
    time_us = t.last_time;
  } else if (t.open && time_us < t.last_time) {
    // A chunk's times never go back (the encoder would clamp them): a
    // thread whose chunks reached the file out of sequence order (the
    // preload wrote one inline while its spool was full) can give out an
    // earlier chunk's events after a later one's.
    if (absl::Status s = Close(t); !s.ok()) return s;
  }
  Open(index, t, time_us);
  if (put(t.encoder)) {
    ++stats_.records_out;
    if (time_us > t.last_time) t.last_time = time_us;
    return absl::OkStatus();
  }
  // Full: this chunk goes, the record starts the next one, in a larger
  // buffer if even an empty chunk of the usual size cannot hold it (a long
  // kBlockClasses list).
  const bool was_empty = t.encoder.empty();
  if (absl::Status s = Close(t); !s.ok()) return s;
  for (size_t bytes = was_empty ? t.buffer.size() * 2 : t.buffer.size();
       bytes <= format::kMaxChunkSize; bytes *= 2) {
    if (t.buffer.size() < bytes) t.buffer.resize(bytes);
    Open(index, t, time_us);
    if (put(t.encoder)) {
      ++stats_.records_out;
      if (time_us > t.last_time) t.last_time = time_us;
      return absl::OkStatus();
    }
    t.open = false;  // nothing was written into it
  }
  return absl::DataLossError(
      absl::StrCat(in_name_, ": a record of thread ", index, " does not fit a chunk"));
}

absl::Status PairingConverter::AddChunk(std::vector<uint8_t> chunk) {
  absl::Status s = merge_.Add(std::move(chunk));
  stats_.chunks_in = merge_.chunks_added();
  return s;
}

absl::Status PairingConverter::MergeSink::OnChunkBegin(const format::ChunkHeader& header) {
  ThreadOut& t = c_.Thread(header.thread_index);
  if (t.sequence == 0 && !t.open && t.next_counter == 0) {
    t.next_counter = header.first_alloc_counter;
  }
  t.tid = header.tid;
  return absl::OkStatus();
}

absl::Status PairingConverter::MergeSink::OnEvents(const Event* begin, const Event* end) {
  return c_.Convert(begin, end);
}

absl::Status PairingConverter::MergeSink::OnChunkEnd(const format::ChunkHeader& header) {
  // The thread's output chunk goes out with its input chunk unless its
  // events wait in the pairing (then more of them follow into it).
  if (c_.pairer_.held() != 0) return absl::OkStatus();
  return c_.Close(c_.Thread(header.thread_index));
}

absl::Status PairingConverter::Convert(const Event* begin, const Event* end) {
  return pairer_.AddEach(begin, end, &out_, [this](const EventArray& paired) {
    for (const Event& o : paired) {
      if (absl::Status s = Emit(o); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
}

absl::Status PairingConverter::DrainBehindNewest(uint64_t window_us) {
  absl::Status s = merge_.DrainBehind(merge_.newest_base_time_us(), window_us, sink_);
  CountInput();
  return s;
}

absl::Status PairingConverter::Drain(uint64_t watermark_us) {
  absl::Status s = merge_.Drain(watermark_us, sink_);
  CountInput();
  return s;
}

void PairingConverter::CountInput() {
  stats_.chunks_in = merge_.chunks_added();
  stats_.records_in = merge_.events_decoded();
}

absl::Status PairingConverter::Emit(const Event& e) {
  const uint32_t index = e.stream;
  ThreadOut& t = Thread(index);
  switch (e.tag) {
    case RecordTag::kAlloc:
    case RecordTag::kRealloc: {
      // A new block: its counter is the thread's next, unless records
      // between were lost (a chunk the preload never wrote): the next
      // chunk then starts at this counter.
      const uint64_t counter = e.id & format::kAllocCounterMask;
      if (counter != t.next_counter) {
        if (absl::Status s = Close(t); !s.ok()) return s;
        t.next_counter = counter;
      }
      absl::Status s;
      if (e.tag == RecordTag::kAlloc) {
        s = Encode(index, t, e.time_us, true, [&](format::ChunkEncoder& enc) {
          return enc.PutAlloc(e.time_us, e.api, e.size, e.stack, e.value, 0);
        });
      } else {
        s = Encode(index, t, e.time_us, true, [&](format::ChunkEncoder& enc) {
          return enc.PutRealloc(e.time_us, e.value, e.api, e.old_id, index, t.next_counter,
                                e.size, e.stack, 0);
        });
      }
      ++t.next_counter;
      return s;
    }
    case RecordTag::kFree:
      return Encode(index, t, e.time_us, true, [&](format::ChunkEncoder& enc) {
        return enc.PutFree(e.time_us, e.api, e.id, index, t.next_counter);
      });
    case RecordTag::kStackNode:
      return Encode(index, t, e.time_us, false, [&](format::ChunkEncoder& enc) {
        return enc.PutStackNode(e.value, e.old_id, e.size);
      });
    case RecordTag::kInherited:
      // A block live at the fork: the id the pairing gave it, the stack,
      // api and size of the parent's block at its address (or as
      // recorded: stack 0, usable size, if the parent had none there).
      return Encode(index, t, e.time_us, true, [&](format::ChunkEncoder& enc) {
        return enc.PutInherited(e.time_us, e.id, e.api, e.size, e.stack);
      });
    default:
      break;
  }
  if (e.full == nullptr) {
    return absl::InternalError(
        absl::StrCat(in_name_, ": the pairing gave out a record without its fields"));
  }
  return EmitRecord(index, t, *e.full);
}

absl::Status PairingConverter::EmitRecord(uint32_t index, ThreadOut& t, const Record& r) {
  using format::ChunkEncoder;
  const uint64_t time = r.time_us;
  switch (r.tag) {
    case RecordTag::kAllocFailed:
      return Encode(index, t, time, true, [&](ChunkEncoder& enc) {
        return enc.PutAllocFailed(time, r.api, r.size, r.stack, r.alignment);
      });
    case RecordTag::kStackNode:
      return Encode(index, t, time, false, [&](ChunkEncoder& enc) {
        return enc.PutStackNode(r.stack_node.node, r.stack_node.parent, r.stack_node.ip);
      });
    case RecordTag::kModule:
      return Encode(index, t, time, true, [&](ChunkEncoder& enc) {
        return enc.PutModule(time, r.module.id, r.module.load_address, r.module.path.data(),
                             r.module.path.size(),
                             reinterpret_cast<const uint8_t*>(r.module.build_id.data()),
                             r.module.build_id.size(), r.module.segments.data(),
                             r.module.segments.size());
      });
    case RecordTag::kModuleUnload:
      return Encode(index, t, time, true, [&](ChunkEncoder& enc) {
        return enc.PutModuleUnload(time, r.module.id);
      });
    case RecordTag::kRss:
      return Encode(index, t, time, true,
                    [&](ChunkEncoder& enc) { return enc.PutRss(time, r.rss_bytes); });
    case RecordTag::kProcess: {
      // PutProcess takes NUL-terminated strings.
      std::vector<std::string> args(r.process.argv.begin(), r.process.argv.end());
      std::vector<const char*> argv;
      size_t argv_bytes = 0;
      for (const std::string& a : args) {
        argv.push_back(a.c_str());
        argv_bytes += a.size();
      }
      return Encode(index, t, time, true, [&](ChunkEncoder& enc) {
        return enc.PutProcess(time, r.process.executable.data(), r.process.executable.size(),
                              argv.data(), argv.size(), argv_bytes, r.process.parent_pid,
                              r.process.parent_trace.data(), r.process.parent_trace.size());
      });
    }
    case RecordTag::kThreadStart:
      return Encode(index, t, time, true, [&](ChunkEncoder& enc) {
        return enc.PutThreadStart(time, r.thread_start.tid, r.thread_start.creator_index);
      });
    case RecordTag::kExec:
      return Encode(index, t, time, true, [&](ChunkEncoder& enc) {
        return enc.PutExec(time, r.exec_path.data(), r.exec_path.size());
      });
    case RecordTag::kExecFailed:
      return Encode(index, t, time, true, [&](ChunkEncoder& enc) { return enc.PutExecFailed(time); });
    case RecordTag::kMarker:
      return Encode(index, t, time, true, [&](ChunkEncoder& enc) {
        return enc.PutMarker(time, r.marker_name.data(), r.marker_name.size());
      });
    case RecordTag::kEnd:
      stats_.ended = true;
      return Encode(index, t, time, true, [&](ChunkEncoder& enc) {
        return enc.PutEnd(time, r.end.reason, r.end.exit_status);
      });
    case RecordTag::kLost:
      return Encode(index, t, time, true,
                    [&](ChunkEncoder& enc) { return enc.PutLost(time, r.lost_events); });
    case RecordTag::kLeakScan: {
      const auto& l = r.leak_scan;
      return Encode(index, t, time, true, [&](ChunkEncoder& enc) {
        return enc.PutLeakScan(time, l.scan, l.reason, l.duration_us, l.threads_stopped,
                               l.threads_missed, l.root_bytes, l.blocks, l.class_blocks,
                               l.class_bytes);
      });
    }
    case RecordTag::kBlockClasses: {
      // The pairing gave the addresses' ids, in address order; the format
      // lists ids ascending.
      ids_.assign(r.block_classes.ids.begin(), r.block_classes.ids.end());
      std::sort(ids_.begin(), ids_.end());
      return Encode(index, t, time, false, [&](ChunkEncoder& enc) {
        return enc.PutBlockClasses(r.block_classes.scan, r.block_classes.leak_class,
                                   ids_.data(), ids_.size());
      });
    }
    case RecordTag::kFreeError:
      return Encode(index, t, time, true, [&](ChunkEncoder& enc) {
        return enc.PutFreeError(time, r.api, r.free_error.error, r.free_error.action, r.address,
                                r.stack, r.id);
      });
    case RecordTag::kFork:
      return Encode(index, t, time, true,
                    [&](ChunkEncoder& enc) { return enc.PutFork(time, r.child_pid); });
    case RecordTag::kInherited:
      // Emit writes the pairing's event (its id, the parent's fields).
      break;
    default:
      break;
  }
  return absl::InternalError(absl::StrCat(in_name_, ": record tag ", static_cast<int>(r.tag),
                                          " cannot be converted"));
}

absl::Status PairingConverter::Finish() {
  if (absl::Status s = Drain(UINT64_MAX); !s.ok()) return s;
  pairer_.BeginRun();
  out_.clear();
  pairer_.Finish(&out_);
  for (const Event& o : out_) {
    if (absl::Status s = Emit(o); !s.ok()) return s;
  }
  for (auto& [i, t] : threads_) {
    if (absl::Status s = Close(*t); !s.ok()) return s;
  }
  stats_.pairing = pairer_.stats();
  return absl::OkStatus();
}

absl::Status PairingConverter::WriteBlock(const uint8_t* chunk, size_t size) {
  // As the preload stores them (trace-format.md, section 3): small chunks,
  // and chunks zstd does not shrink, raw.
  const uint8_t* payload = chunk;
  size_t payload_size = size;
  format::Codec codec = format::Codec::kRaw;
  if (cctx_ != nullptr && size > 256) {
    compressed_.resize(ZSTD_compressBound(size));
    const size_t n = ZSTD_compress2(static_cast<ZSTD_CCtx*>(cctx_), compressed_.data(),
                                    compressed_.size(), chunk, size);
    if (!ZSTD_isError(n) && n < size) {
      payload = compressed_.data();
      payload_size = n;
      codec = format::Codec::kZstd;
    }
  }
  const format::BlockHeader b = format::MakeBlockHeader(
      chunk, static_cast<uint32_t>(size), codec, static_cast<uint32_t>(payload_size));
  if (absl::Status s = WriteAll(&b, sizeof b); !s.ok()) return s;
  if (absl::Status s = WriteAll(payload, payload_size); !s.ok()) return s;
  stats_.bytes_out += sizeof b + payload_size;
  return absl::OkStatus();
}

absl::Status PairingConverter::WriteAll(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t n = write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot write ", name_));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status ConvertAddressTrace(const std::string& in_path, const std::string& out_path,
                                 int zstd_level, PairingConversionStats* stats,
                                 const ForkInheritance* given) {
  absl::StatusOr<std::unique_ptr<format::TraceReader>> reader = format::TraceReader::Open(in_path);
  if (!reader.ok()) return reader.status();
  const int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", out_path));
  absl::Status status;
  {
    // A fork child: the parent's blocks at the fork, from its trace.
    std::optional<ForkInheritance> read;
    const ForkInheritance* inheritance = nullptr;
    const format::FileHeader& header = (*reader)->header();
    if (format::HasAddressFrees(header) && (header.flags & format::kFileFlagForkChild) != 0) {
      if (given == nullptr) read = ReadForkInheritance(in_path, header.pid);
      inheritance = given != nullptr ? given : &*read;
    }
    absl::StatusOr<std::unique_ptr<PairingConverter>> converter =
        inheritance != nullptr && !inheritance->missing.empty()
            ? absl::FailedPreconditionError(absl::StrCat(
                  "a fork child's trace stays version 6 without its parent's blocks: ",
                  inheritance->missing))
            : PairingConverter::Create(header, in_path, fd, out_path, zstd_level,
                                       inheritance != nullptr ? &inheritance->blocks : nullptr);
    if (!converter.ok()) {
      status = absl::Status(converter.status().code(),
                            absl::StrCat(in_path, ": ", converter.status().message()));
    } else {
      // The chunks in base-time order, each added before the events
      // earlier than its base time are drained: no chunk still to come
      // holds an earlier one (its base time bounds its times from below).
      // An index first (offset, base time), then each chunk read again.
      struct Ref {
        uint64_t base_time_us;
        uint32_t thread_index;
        uint64_t sequence;
        uint64_t offset;
      };
      std::vector<Ref> refs;
      std::vector<uint8_t> chunk;
      uint64_t offset = 0;
      while ((*reader)->NextChunk(&chunk, &offset)) {
        format::ChunkHeader h{};
        if (chunk.size() >= sizeof h) std::memcpy(&h, chunk.data(), sizeof h);
        refs.push_back(Ref{h.base_time_us, h.thread_index, h.sequence, offset});
      }
      status = (*reader)->status();
      std::stable_sort(refs.begin(), refs.end(), [](const Ref& a, const Ref& b) {
        if (a.base_time_us != b.base_time_us) return a.base_time_us < b.base_time_us;
        if (a.thread_index != b.thread_index) return a.thread_index < b.thread_index;
        return a.sequence < b.sequence;
      });
      for (const Ref& ref : refs) {
        if (!status.ok()) break;
        status = (*reader)->ReadChunkAt(ref.offset, &chunk);
        if (status.ok()) status = (*converter)->AddChunk(std::move(chunk));
        if (status.ok()) status = (*converter)->Drain(ref.base_time_us);
        chunk = {};
      }
      if (status.ok()) status = (*converter)->Finish();
      if (stats != nullptr) {
        *stats = (*converter)->stats();
        stats->truncated = (*reader)->truncated();
      }
    }
  }
  if (close(fd) != 0 && status.ok()) {
    status = absl::ErrnoToStatus(errno, absl::StrCat("cannot write ", out_path));
  }
  if (!status.ok()) unlink(out_path.c_str());
  return status;
}

}  // namespace heapsight::analyzer
