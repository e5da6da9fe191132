// format/api_name.cc: display names of the allocation APIs (trace_format.h).
#include "format/trace_format.h"

namespace heapsight::format {

const char* ApiName(Api api) {
  switch (api) {
    case Api::kUnknown: return "unknown";
    case Api::kMalloc: return "malloc";
    case Api::kCalloc: return "calloc";
    case Api::kRealloc: return "realloc";
    case Api::kReallocArray: return "reallocarray";
    case Api::kPosixMemalign: return "posix_memalign";
    case Api::kAlignedAlloc: return "aligned_alloc";
    case Api::kMemalign: return "memalign";
    case Api::kValloc: return "valloc";
    case Api::kPvalloc: return "pvalloc";
    case Api::kFree: return "free";
    case Api::kFreeSized: return "free_sized";
    case Api::kFreeAlignedSized: return "free_aligned_sized";
    case Api::kNew: return "operator new(unsigned long)";
    case Api::kNewArray: return "operator new[](unsigned long)";
    case Api::kNewNothrow: return "operator new(unsigned long, std::nothrow_t const&)";
    case Api::kNewArrayNothrow: return "operator new[](unsigned long, std::nothrow_t const&)";
    case Api::kNewAligned: return "operator new(unsigned long, std::align_val_t)";
    case Api::kNewArrayAligned: return "operator new[](unsigned long, std::align_val_t)";
    case Api::kNewAlignedNothrow:
      return "operator new(unsigned long, std::align_val_t, std::nothrow_t const&)";
    case Api::kNewArrayAlignedNothrow:
      return "operator new[](unsigned long, std::align_val_t, std::nothrow_t const&)";
    case Api::kDelete: return "operator delete(void*)";
    case Api::kDeleteArray: return "operator delete[](void*)";
    case Api::kDeleteSized: return "operator delete(void*, unsigned long)";
    case Api::kDeleteArraySized: return "operator delete[](void*, unsigned long)";
    case Api::kDeleteAligned: return "operator delete(void*, std::align_val_t)";
    case Api::kDeleteArrayAligned: return "operator delete[](void*, std::align_val_t)";
    case Api::kDeleteSizedAligned:
      return "operator delete(void*, unsigned long, std::align_val_t)";
    case Api::kDeleteArraySizedAligned:
      return "operator delete[](void*, unsigned long, std::align_val_t)";
    case Api::kDeleteNothrow: return "operator delete(void*, std::nothrow_t const&)";
    case Api::kDeleteArrayNothrow: return "operator delete[](void*, std::nothrow_t const&)";
    case Api::kDeleteAlignedNothrow:
      return "operator delete(void*, std::align_val_t, std::nothrow_t const&)";
    case Api::kDeleteArrayAlignedNothrow:
      return "operator delete[](void*, std::align_val_t, std::nothrow_t const&)";
    default: return nullptr;
  }
}

}  // namespace heapsight::format
