// analyzer/report/trace_dump.cc: see trace_dump.h.
#include "analyzer/report/trace_dump.h"

#include <sys/stat.h>

#include <cinttypes>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "format/chunk_decoder.h"
#include "format/trace_reader.h"

namespace heapsight::analyzer {
namespace {

using format::Record;
using format::RecordTag;

std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::string Hex(std::string_view s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

const char* Api(format::Api api) {
  const char* name = format::ApiName(api);
  return name != nullptr ? name : "?";
}

std::string Id(uint64_t id) {
  return absl::StrCat(format::AllocIdThread(id), ":", format::AllocIdCounter(id));
}

// Address frees (version 6): the hot records with their addresses and
// order values, the blocks of kInherited and kBlockClasses by address.
// False for the other records (PrintRecord prints them).
bool PrintAddressRecord(std::FILE* out, const Record& r) {
  switch (r.tag) {
    case RecordTag::kAlloc:
      std::fprintf(out, "  %" PRIu64 " alloc id=%s api=%s size=%" PRIu64 " stack=%" PRIu64
                   " align=%" PRIu64 " addr=0x%" PRIx64 " order=%" PRIu64 "\n",
                   r.time_us, Id(r.id).c_str(), Api(r.api), r.size, r.stack, r.alignment,
                   r.address, r.order);
      return true;
    case RecordTag::kFree:
      std::fprintf(out, "  %" PRIu64 " free addr=0x%" PRIx64 " order=%" PRIu64 " api=%s\n",
                   r.time_us, r.address, r.order, Api(r.api));
      return true;
    case RecordTag::kRealloc:
      std::fprintf(out, "  %" PRIu64 " realloc old_addr=0x%" PRIx64 " old_order=%" PRIu64
                   " id=%s api=%s size=%" PRIu64 " stack=%" PRIu64 " alloc_time=%" PRIu64
                   " addr=0x%" PRIx64 " order=%" PRIu64 "\n",
                   r.time_us, r.old_address, r.old_order, Id(r.id).c_str(), Api(r.api), r.size,
                   r.stack, r.time2_us, r.address, r.order);
      return true;
    case RecordTag::kInherited:
      std::fprintf(out, "  %" PRIu64 " inherited addr=0x%" PRIx64 " api=%s size=%" PRIu64
                   " stack=%" PRIu64 "\n",
                   r.time_us, r.id, Api(r.api), r.size, r.stack);
      return true;
    case RecordTag::kBlockClasses: {
      const format::Record::BlockClassesFields& b = r.block_classes;
      std::string addresses;
      for (size_t i = 0; i < b.ids.size() && i < 8; ++i) {
        absl::StrAppend(&addresses, " 0x", absl::Hex(b.ids[i]));
      }
      if (b.ids.size() > 8) absl::StrAppend(&addresses, " ...");
      std::fprintf(out, "  block-classes scan=%" PRIu64 " class=%u count=%zu addrs=[%s ]\n",
                   b.scan, static_cast<unsigned>(b.leak_class), b.ids.size(), addresses.c_str());
      return true;
    }
    default:
      return false;
  }
}

// `compact`: the file's frees are compact (format::HasCompactFrees): a free
// shows the freed block's stack and size, which is all it names.
// `address`: they name addresses (format::HasAddressFrees).
void PrintRecord(std::FILE* out, const Record& r, bool compact, bool address) {
  if (address && PrintAddressRecord(out, r)) return;
  switch (r.tag) {
    case RecordTag::kAlloc:
      std::fprintf(out, "  %" PRIu64 " alloc id=%s api=%s size=%" PRIu64 " stack=%" PRIu64
                   " align=%" PRIu64 " addr=0x%" PRIx64 "\n",
                   r.time_us, Id(r.id).c_str(), Api(r.api), r.size, r.stack, r.alignment,
                   r.address);
      break;
    case RecordTag::kFree:
      if (compact) {
        std::fprintf(out, "  %" PRIu64 " free stack=%" PRIu64 " size=%" PRIu64 " api=%s\n",
                     r.time_us, r.stack, r.size, Api(r.api));
        break;
      }
      std::fprintf(out, "  %" PRIu64 " free id=%s api=%s\n", r.time_us, Id(r.id).c_str(),
                   Api(r.api));
      break;
    case RecordTag::kRealloc:
      if (compact) {
        std::fprintf(out, "  %" PRIu64 " realloc old_stack=%" PRIu64 " old_size=%" PRIu64
                     " id=%s api=%s size=%" PRIu64 " stack=%" PRIu64 " alloc_time=%" PRIu64
                     " addr=0x%" PRIx64 "\n",
                     r.time_us, r.old_stack, r.old_size, Id(r.id).c_str(), Api(r.api), r.size,
                     r.stack, r.time2_us, r.address);
        break;
      }
      std::fprintf(out, "  %" PRIu64 " realloc old=%s id=%s api=%s size=%" PRIu64
                   " stack=%" PRIu64 " alloc_time=%" PRIu64 " addr=0x%" PRIx64 "\n",
                   r.time_us, Id(r.old_id).c_str(), Id(r.id).c_str(), Api(r.api), r.size,
                   r.stack, r.time2_us, r.address);
      break;
    case RecordTag::kAllocFailed:
      std::fprintf(out, "  %" PRIu64 " alloc-failed api=%s size=%" PRIu64 " stack=%" PRIu64 "\n",
                   r.time_us, Api(r.api), r.size, r.stack);
      break;
    case RecordTag::kStackNode:
      std::fprintf(out, "  node %" PRIu64 " parent=%" PRIu64 " ip=0x%" PRIx64 "\n",
                   r.stack_node.node, r.stack_node.parent, r.stack_node.ip);
      break;
    case RecordTag::kModule: {
      std::fprintf(out, "  %" PRIu64 " module id=%" PRIu64 " load=0x%" PRIx64
                   " path=\"%s\" build_id=%s segments=%zu\n",
                   r.time_us, r.module.id, r.module.load_address, Printable(r.module.path).c_str(),
                   Hex(r.module.build_id).c_str(), r.module.segments.size());
      for (const auto& s : r.module.segments) {
        std::fprintf(out, "      segment vaddr=0x%" PRIx64 " memsz=0x%" PRIx64
                     " offset=0x%" PRIx64 " flags=%u\n",
                     s.vaddr, s.memsz, s.file_offset, s.flags);
      }
      break;
    }
    case RecordTag::kModuleUnload:
      std::fprintf(out, "  %" PRIu64 " module-unload id=%" PRIu64 "\n", r.time_us,
                   r.module.id);
      break;
    case RecordTag::kRss:
      std::fprintf(out, "  %" PRIu64 " rss bytes=%" PRIu64 "\n", r.time_us, r.rss_bytes);
      break;
    case RecordTag::kProcess: {
      std::string args;
      for (auto a : r.process.argv) absl::StrAppend(&args, " \"", Printable(a), "\"");
      std::fprintf(out, "  %" PRIu64 " process exe=\"%s\" parent_pid=%" PRIu64
                   " parent_trace=\"%s\" argv=[%s ]\n",
                   r.time_us, Printable(r.process.executable).c_str(), r.process.parent_pid,
                   Printable(r.process.parent_trace).c_str(), args.c_str());
      break;
    }
    case RecordTag::kThreadStart:
      std::fprintf(out, "  %" PRIu64 " thread-start tid=%" PRIu64 " creator=%" PRIu64 "\n",
                   r.time_us, r.thread_start.tid, r.thread_start.creator_index);
      break;
    case RecordTag::kFork:
      std::fprintf(out, "  %" PRIu64 " fork child=%" PRIu64 "\n", r.time_us, r.child_pid);
      break;
    case RecordTag::kExec:
      std::fprintf(out, "  %" PRIu64 " exec path=\"%s\"\n", r.time_us,
                   Printable(r.exec_path).c_str());
      break;
    case RecordTag::kExecFailed:
      std::fprintf(out, "  %" PRIu64 " exec-failed\n", r.time_us);
      break;
    case RecordTag::kInherited:
      std::fprintf(out, "  %" PRIu64 " inherited id=%s api=%s size=%" PRIu64 " stack=%" PRIu64
                   "\n",
                   r.time_us, Id(r.id).c_str(), Api(r.api), r.size, r.stack);
      break;
    case RecordTag::kMarker:
      std::fprintf(out, "  %" PRIu64 " marker \"%s\"\n", r.time_us,
                   Printable(r.marker_name).c_str());
      break;
    case RecordTag::kEnd:
      std::fprintf(out, "  %" PRIu64 " end reason=%u exit_status=%" PRId64 "\n", r.time_us,
                   static_cast<unsigned>(r.end.reason), r.end.exit_status);
      break;
    case RecordTag::kLost:
      std::fprintf(out, "  %" PRIu64 " lost events=%" PRIu64 "\n", r.time_us, r.lost_events);
      break;
    case RecordTag::kLeakScan: {
      const format::Record::LeakScanFields& l = r.leak_scan;
      std::fprintf(out, "  %" PRIu64 " leak-scan scan=%" PRIu64 " reason=%u duration_us=%" PRIu64
                   " threads_stopped=%" PRIu64 " threads_missed=%" PRIu64 " root_bytes=%" PRIu64
                   " blocks=%" PRIu64 " definite=%" PRIu64 "/%" PRIu64 " indirect=%" PRIu64
                   "/%" PRIu64 " possible=%" PRIu64 "/%" PRIu64 " reachable=%" PRIu64 "/%" PRIu64
                   "\n",
                   r.time_us, l.scan, static_cast<unsigned>(l.reason), l.duration_us,
                   l.threads_stopped, l.threads_missed, l.root_bytes, l.blocks, l.class_blocks[0],
                   l.class_bytes[0], l.class_blocks[1], l.class_bytes[1], l.class_blocks[2],
                   l.class_bytes[2], l.class_blocks[3], l.class_bytes[3]);
      break;
    }
    case RecordTag::kBlockClasses: {
      const format::Record::BlockClassesFields& b = r.block_classes;
      std::string ids;
      for (size_t i = 0; i < b.ids.size() && i < 8; ++i) absl::StrAppend(&ids, " ", Id(b.ids[i]));
      if (b.ids.size() > 8) absl::StrAppend(&ids, " ...");
      std::fprintf(out, "  block-classes scan=%" PRIu64 " class=%u count=%zu ids=[%s ]",
                   b.scan, static_cast<unsigned>(b.leak_class), b.ids.size(), ids.c_str());
      if (!b.stacks.empty()) {  // a compact trace's: each block's stack and size
        std::string blocks;
        for (size_t i = 0; i < b.stacks.size() && i < 8; ++i) {
          absl::StrAppend(&blocks, " ", b.stacks[i], "/", b.sizes[i]);
        }
        if (b.stacks.size() > 8) absl::StrAppend(&blocks, " ...");
        std::fprintf(out, " stack/size=[%s ]", blocks.c_str());
      }
      std::fprintf(out, "\n");
      break;
    }
    case RecordTag::kFreeError:
      std::fprintf(out, "  %" PRIu64 " free-error api=%s error=%u action=%u addr=0x%" PRIx64
                   " stack=%" PRIu64 " alloc_id=%s\n",
                   r.time_us, Api(r.api), static_cast<unsigned>(r.free_error.error),
                   static_cast<unsigned>(r.free_error.action), r.address, r.stack,
                   r.id != 0 ? Id(r.id).c_str() : "-");
      break;
    default:
      std::fprintf(out, "  ? tag %u\n", static_cast<unsigned>(r.tag));
      break;
  }
}

}  // namespace

absl::Status DumpTrace(const std::string& path, std::FILE* out, ProgressListener* progress,
                       bool* cut_short, bool* truncated) {
  bool saw_end = false;
  absl::StatusOr<std::unique_ptr<format::TraceReader>> opened = format::TraceReader::Open(path);
  if (!opened.ok()) return opened.status();
  struct stat st;
  const uint64_t file_size =
      stat(path.c_str(), &st) == 0 && st.st_size > 0 ? static_cast<uint64_t>(st.st_size) : 0;
  // The bar is cleared however the dump ends.
  struct FinishProgress {
    ProgressListener* p;
    ~FinishProgress() {
      if (p != nullptr) p->Finish();
    }
  } finish{progress};
  format::TraceReader& reader = **opened;
  const format::FileHeader& h = reader.header();
  std::fprintf(out, "trace %s: version %u, pid %" PRIu64 ", ppid %" PRIu64 ", flags 0x%x, "
               "page size %u, sample period %" PRIu64 "\n",
               path.c_str(), h.version, h.pid, h.ppid, h.flags, h.page_size,
               h.sample_period_bytes);
  const bool compact = format::HasCompactFrees(h);
  if (compact) {
    std::fprintf(out, "compact frees: a free names its block's stack and size, not its id\n");
  }
  const bool address = format::HasAddressFrees(h);
  if (address) {
    std::fprintf(out, "address frees: a free names its block's address, not its id\n");
  }
  std::vector<uint8_t> chunk;
  uint64_t offset = 0;
  Record record;
  while (reader.NextChunk(&chunk, &offset)) {
    format::ChunkDecoder decoder(chunk.data(), chunk.size(), compact, address);
    if (!decoder.ok()) {
      return absl::DataLossError(absl::StrCat(path, ": corrupt trace: ", decoder.error()));
    }
    const format::ChunkHeader& c = decoder.header();
    std::fprintf(out, "chunk at %" PRIu64 ": thread %u (tid %u) seq %" PRIu64 " base %" PRIu64
                 " us, first alloc %" PRIu64 ", %zu bytes\n",
                 offset, c.thread_index, c.tid, c.sequence, c.base_time_us,
                 c.first_alloc_counter, chunk.size());
    while (decoder.Next(&record)) {
      PrintRecord(out, record, compact, address);
      if (record.tag == RecordTag::kEnd) saw_end = true;
    }
    if (progress != nullptr) progress->Update(offset, file_size);
    if (!decoder.ok()) {
      return absl::DataLossError(absl::StrCat(path, ": corrupt trace: ", decoder.error(),
                                              " (block at offset ", offset, ")"));
    }
  }
  if (!reader.status().ok()) return reader.status();
  if (reader.truncated()) std::fprintf(out, "truncated: the file ends inside a block\n");
  if (cut_short != nullptr) *cut_short = reader.truncated() || !saw_end;
  if (truncated != nullptr) *truncated = reader.truncated();
  return absl::OkStatus();
}

}  // namespace heapsight::analyzer
