// preload/unwinder_cfi.cc: see unwinder_cfi.h.
//
// Constraints: no malloc, no locks, no syscalls; async-signal-safe. Every
// read of .eh_frame stays inside the CIE or FDE length it belongs to.
#include "preload/unwinder_cfi.h"

#include <dlfcn.h>

#include <cstddef>
#include <cstring>

namespace heapsight::preload {
namespace {

// DWARF register numbers (x86-64 psABI).
constexpr uint64_t kRegRbp = 6;
constexpr uint64_t kRegRsp = 7;
constexpr uint64_t kRegRa = 16;

// Pointer encodings (DW_EH_PE_*).
constexpr uint8_t kPeOmit = 0xff;
constexpr uint8_t kPeAbsptr = 0x00;
constexpr uint8_t kPeUleb128 = 0x01;
constexpr uint8_t kPeUdata2 = 0x02;
constexpr uint8_t kPeUdata4 = 0x03;
constexpr uint8_t kPeUdata8 = 0x04;
constexpr uint8_t kPeSleb128 = 0x09;
constexpr uint8_t kPeSdata2 = 0x0a;
constexpr uint8_t kPeSdata4 = 0x0b;
constexpr uint8_t kPeSdata8 = 0x0c;
constexpr uint8_t kPePcrel = 0x10;
constexpr uint8_t kPeDatarel = 0x30;

// A bounded reader over [p, end).
struct Reader {
  const uint8_t* p;
  const uint8_t* end;
  bool ok = true;

  bool Has(size_t n) {
    if (ok && static_cast<size_t>(end - p) >= n) return true;
    ok = false;
    return false;
  }
  uint8_t U8() {
    if (!Has(1)) return 0;
    return *p++;
  }
  template <typename T>
  T Fixed() {
    T v{};
    if (!Has(sizeof v)) return v;
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    return v;
  }
  uint64_t Uleb() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = U8();
      if (!ok) return 0;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    ok = false;
    return 0;
  }
  int64_t Sleb() {
    int64_t v = 0;
    int shift = 0;
    uint8_t b = 0;
    do {
      b = U8();
      if (!ok || shift >= 64) {
        ok = false;
        return 0;
      }
      v |= static_cast<int64_t>(b & 0x7f) << shift;
      shift += 7;
    } while ((b & 0x80) != 0);
    if (shift < 64 && (b & 0x40) != 0) v |= -(static_cast<int64_t>(1) << shift);
    return v;
  }
  // An encoded pointer; `data_base` for datarel. Indirect and unknown
  // encodings fail.
  uintptr_t Encoded(uint8_t enc, uintptr_t data_base) {
    if (enc == kPeOmit) return 0;
    uintptr_t here = reinterpret_cast<uintptr_t>(p);
    uintptr_t v = 0;
    switch (enc & 0x0f) {
      case kPeAbsptr: v = Fixed<uint64_t>(); break;
      case kPeUleb128: v = Uleb(); break;
      case kPeUdata2: v = Fixed<uint16_t>(); break;
      case kPeUdata4: v = Fixed<uint32_t>(); break;
      case kPeUdata8: v = Fixed<uint64_t>(); break;
      case kPeSleb128: v = static_cast<uintptr_t>(Sleb()); break;
      case kPeSdata2: v = static_cast<uintptr_t>(static_cast<intptr_t>(Fixed<int16_t>())); break;
      case kPeSdata4: v = static_cast<uintptr_t>(static_cast<intptr_t>(Fixed<int32_t>())); break;
      case kPeSdata8: v = static_cast<uintptr_t>(Fixed<int64_t>()); break;
      default: ok = false; return 0;
    }
    switch (enc & 0x70) {
      case 0: break;
      case kPePcrel: v += here; break;
      case kPeDatarel: v += data_base; break;
      default: ok = false; return 0;
    }
    if ((enc & 0x80) != 0) ok = false;  // indirect: not in .eh_frame of ordinary code
    return v;
  }
};

// What a register's rule can be, as far as we accept it.
enum class RegRule : uint8_t { kSame, kOffset, kUndefined, kOther };

struct RowState {
  uint64_t cfa_reg = kRegRsp;
  int64_t cfa_offset = 0;
  bool cfa_ok = true;  // false: a CFA expression
  RegRule rbp = RegRule::kSame;
  int64_t rbp_offset = 0;
  RegRule ra = RegRule::kSame;
  int64_t ra_offset = 0;
};

struct Cie {
  uint64_t code_align = 1;
  int64_t data_align = 1;
  uint64_t ra_reg = kRegRa;
  uint8_t fde_encoding = kPeAbsptr;
  bool has_z = false;
  const uint8_t* instructions = nullptr;
  const uint8_t* end = nullptr;
};

// Parses the CIE at `p` (its length field).
bool ParseCie(const uint8_t* p, Cie* cie) {
  uint32_t length;
  std::memcpy(&length, p, 4);
  if (length == 0 || length == 0xffffffffu) return false;  // none, or 64-bit DWARF
  Reader r{p + 4, p + 4 + length};
  if (r.Fixed<uint32_t>() != 0) return false;  // not a CIE
  uint8_t version = r.U8();
  if (version != 1 && version != 3) return false;
  const char* aug = reinterpret_cast<const char*>(r.p);
  size_t aug_len = 0;
  while (r.Has(1) && *r.p != 0) {
    ++r.p;
    ++aug_len;
  }
  r.U8();  // the terminating 0
  if (!r.ok) return false;
  cie->code_align = r.Uleb();
  cie->data_align = r.Sleb();
  cie->ra_reg = version == 1 ? r.U8() : r.Uleb();
  if (aug_len > 0 && aug[0] != 'z') return false;  // "eh" and other old forms
  if (aug_len > 0) {
    cie->has_z = true;
    uint64_t data_len = r.Uleb();
    if (!r.Has(data_len)) return false;
    Reader a{r.p, r.p + data_len};
    for (size_t i = 1; i < aug_len; ++i) {
      switch (aug[i]) {
        case 'R': cie->fde_encoding = a.U8(); break;
        case 'L': a.U8(); break;
        case 'P': {
          uint8_t enc = a.U8();
          a.Encoded(static_cast<uint8_t>(enc & 0x7f), 0);  // skipped (indirect is fine here)
          break;
        }
        case 'S': return false;  // a signal frame
        case 'B': break;  // AArch64 only; harmless
        default: return false;
      }
      if (!a.ok) return false;
    }
    r.p += data_len;
  }
  if (!r.ok || cie->ra_reg != kRegRa) return false;
  cie->instructions = r.p;
  cie->end = r.end;
  return true;
}

constexpr int kMaxRemembered = 8;

// Runs the CFA program [p, end) from `*loc`, stopping before the first
// advance past `target`. `initial`: the CIE's row (for DW_CFA_restore).
// False on an instruction we cannot follow.
bool RunProgram(const uint8_t* p, const uint8_t* end, const Cie& cie, uintptr_t* loc,
                uintptr_t target, const RowState& initial, RowState* row) {
  Reader r{p, end};
  RowState stack[kMaxRemembered];
  int depth = 0;
  auto set_reg = [&](uint64_t reg, RegRule rule, int64_t offset) {
    if (reg == kRegRbp) {
      row->rbp = rule;
      row->rbp_offset = offset;
    } else if (reg == kRegRa) {
      row->ra = rule;
      row->ra_offset = offset;
    } else if (reg == kRegRsp && rule != RegRule::kSame) {
      // rsp restored from somewhere else than the CFA: not our shape.
      row->cfa_ok = false;
    }
  };
  auto restore_reg = [&](uint64_t reg) {
    if (reg == kRegRbp) {
      row->rbp = initial.rbp;
      row->rbp_offset = initial.rbp_offset;
    } else if (reg == kRegRa) {
      row->ra = initial.ra;
      row->ra_offset = initial.ra_offset;
    }
  };
  auto advance = [&](uint64_t delta) {
    *loc += delta * cie.code_align;
    return *loc <= target;
  };
  while (r.p < r.end) {
    uint8_t op = r.U8();
    uint8_t low = op & 0x3f;
    switch (op >> 6) {
      case 1:
        if (!advance(low)) return true;
        continue;
      case 2:
        set_reg(low, RegRule::kOffset, static_cast<int64_t>(r.Uleb()) * cie.data_align);
        if (!r.ok) return false;
        continue;
      case 3:
        restore_reg(low);
        continue;
      default:
        break;
    }
    switch (op) {
      case 0x00: break;  // nop
      case 0x01: {       // set_loc
        uintptr_t to = r.Encoded(cie.fde_encoding, 0);
        if (!r.ok) return false;
        if (to > target) return true;
        *loc = to;
        break;
      }
      case 0x02:
        if (!advance(r.U8())) return r.ok;
        break;
      case 0x03:
        if (!advance(r.Fixed<uint16_t>())) return r.ok;
        break;
      case 0x04:
        if (!advance(r.Fixed<uint32_t>())) return r.ok;
        break;
      case 0x05: {  // offset_extended
        uint64_t reg = r.Uleb();
        set_reg(reg, RegRule::kOffset, static_cast<int64_t>(r.Uleb()) * cie.data_align);
        break;
      }
      case 0x06: restore_reg(r.Uleb()); break;  // restore_extended
      case 0x07: set_reg(r.Uleb(), RegRule::kUndefined, 0); break;
      case 0x08: set_reg(r.Uleb(), RegRule::kSame, 0); break;
      case 0x09: {  // register
        uint64_t reg = r.Uleb();
        r.Uleb();
        set_reg(reg, RegRule::kOther, 0);
        break;
      }
      case 0x0a:  // remember_state
        if (depth == kMaxRemembered) return false;
        stack[depth++] = *row;
        break;
      case 0x0b:  // restore_state
        if (depth == 0) return false;
        *row = stack[--depth];
        break;
      case 0x0c:  // def_cfa
        row->cfa_reg = r.Uleb();
        row->cfa_offset = static_cast<int64_t>(r.Uleb());
        row->cfa_ok = true;
        break;
      case 0x0d:  // def_cfa_register
        row->cfa_reg = r.Uleb();
        break;
      case 0x0e:  // def_cfa_offset
        row->cfa_offset = static_cast<int64_t>(r.Uleb());
        break;
      case 0x0f: {  // def_cfa_expression
        uint64_t len = r.Uleb();
        if (!r.Has(len)) return false;
        r.p += len;
        row->cfa_ok = false;
        break;
      }
      case 0x10:    // expression
      case 0x16: {  // val_expression
        uint64_t reg = r.Uleb();
        uint64_t len = r.Uleb();
        if (!r.Has(len)) return false;
        r.p += len;
        set_reg(reg, RegRule::kOther, 0);
        break;
      }
      case 0x11: {  // offset_extended_sf
        uint64_t reg = r.Uleb();
        set_reg(reg, RegRule::kOffset, r.Sleb() * cie.data_align);
        break;
      }
      case 0x12:  // def_cfa_sf
        row->cfa_reg = r.Uleb();
        row->cfa_offset = r.Sleb() * cie.data_align;
        row->cfa_ok = true;
        break;
      case 0x13:  // def_cfa_offset_sf
        row->cfa_offset = r.Sleb() * cie.data_align;
        break;
      case 0x14:    // val_offset
      case 0x15: {  // val_offset_sf
        uint64_t reg = r.Uleb();
        if (op == 0x14) {
          r.Uleb();
        } else {
          r.Sleb();
        }
        set_reg(reg, RegRule::kOther, 0);
        break;
      }
      case 0x2e: r.Uleb(); break;  // GNU_args_size
      case 0x2f: {                 // GNU_negative_offset_extended
        uint64_t reg = r.Uleb();
        set_reg(reg, RegRule::kOffset, -static_cast<int64_t>(r.Uleb()) * cie.data_align);
        break;
      }
      default: return false;
    }
    if (!r.ok) return false;
  }
  return r.ok;
}

// The FDE covering `pc` in the module whose .eh_frame_hdr is `hdr`, or
// nullptr. Only the binary-search table's usual encoding is read.
const uint8_t* FindFde(const uint8_t* hdr, uintptr_t pc) {
  if (hdr[0] != 1) return nullptr;
  uint8_t ptr_enc = hdr[1], count_enc = hdr[2], table_enc = hdr[3];
  // datarel | sdata4 table, udata4 count: what ld and gold write.
  if (table_enc != (kPeDatarel | kPeSdata4) || count_enc != kPeUdata4) return nullptr;
  Reader r{hdr + 4, hdr + 4 + 16};
  r.Encoded(ptr_enc, reinterpret_cast<uintptr_t>(hdr));
  uint32_t count = r.Fixed<uint32_t>();
  if (!r.ok || count == 0) return nullptr;
  const auto* table = reinterpret_cast<const int32_t*>(r.p);
  auto base = reinterpret_cast<intptr_t>(hdr);
  // The last entry whose initial location is <= pc.
  uint32_t lo = 0, hi = count;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (static_cast<uintptr_t>(base + table[2 * mid]) <= pc) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  if (static_cast<uintptr_t>(base + table[2 * lo]) > pc) return nullptr;
  return reinterpret_cast<const uint8_t*>(base + table[2 * lo + 1]);
}

}  // namespace

FrameRule FindFrameRule(uintptr_t return_address) {
  FrameRule rule;
  if (return_address == 0) return rule;
  uintptr_t pc = return_address - 1;  // inside the call instruction
  dl_find_object found;
  if (_dl_find_object(reinterpret_cast<void*>(pc), &found) != 0 || found.dlfo_eh_frame == nullptr) {
    return rule;
  }
  const uint8_t* fde = FindFde(static_cast<const uint8_t*>(found.dlfo_eh_frame), pc);
  if (fde == nullptr) return rule;
  uint32_t length;
  std::memcpy(&length, fde, 4);
  if (length == 0 || length == 0xffffffffu) return rule;
  Reader r{fde + 4, fde + 4 + length};
  const uint8_t* cie_id_at = r.p;
  uint32_t cie_pointer = r.Fixed<uint32_t>();
  if (!r.ok || cie_pointer == 0) return rule;
  Cie cie;
  if (!ParseCie(cie_id_at - cie_pointer, &cie)) return rule;
  uintptr_t begin = r.Encoded(cie.fde_encoding, 0);
  uintptr_t range = r.Encoded(static_cast<uint8_t>(cie.fde_encoding & 0x0f), 0);
  if (!r.ok || pc < begin || pc - begin >= range) return rule;
  if (cie.has_z) {
    uint64_t aug_len = r.Uleb();
    if (!r.Has(aug_len)) return rule;
    r.p += aug_len;
  }
  RowState initial;
  uintptr_t loc = begin;
  if (!RunProgram(cie.instructions, cie.end, cie, &loc, pc, initial, &initial)) return rule;
  RowState row = initial;
  loc = begin;
  if (!RunProgram(r.p, r.end, cie, &loc, pc, initial, &row)) return rule;
  if (!row.cfa_ok || (row.cfa_reg != kRegRsp && row.cfa_reg != kRegRbp)) return rule;
  if (row.cfa_offset < 16 - (1 << 30) || row.cfa_offset > (1 << 30)) return rule;
  if (row.ra == RegRule::kUndefined) {
    rule.end = true;
  } else if (row.ra != RegRule::kOffset || row.ra_offset != -8) {
    return rule;
  }
  if (row.rbp == RegRule::kOffset) {
    if (row.rbp_offset >= 0 || row.rbp_offset < -(1 << 20)) return rule;
    rule.rbp_saved = true;
    rule.rbp_offset = static_cast<int32_t>(row.rbp_offset);
  } else if (row.rbp != RegRule::kSame) {
    return rule;
  }
  rule.cfa_offset = static_cast<int32_t>(row.cfa_offset);
  rule.kind = row.cfa_reg == kRegRsp ? FrameRule::kRsp : FrameRule::kRbp;
  return rule;
}

}  // namespace heapsight::preload
