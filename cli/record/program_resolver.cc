// cli/record/program_resolver.cc: see program_resolver.h.
#include "cli/record/program_resolver.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace heapsight::record {
namespace {

// RAII fd.
struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

bool ReadAt(int fd, uint64_t offset, void* buf, size_t size) {
  return pread(fd, buf, size, static_cast<off_t>(offset)) == static_cast<ssize_t>(size);
}

// The ELF class and machine of this program, hence of libheapsight.so.
static_assert(sizeof(void*) == 8, "heapsight is a 64-bit program");
constexpr unsigned char kHostClass = ELFCLASS64;
#if defined(__x86_64__)
constexpr uint16_t kHostMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr uint16_t kHostMachine = EM_AARCH64;
#elif defined(__riscv)
constexpr uint16_t kHostMachine = EM_RISCV;
#elif defined(__powerpc64__)
constexpr uint16_t kHostMachine = EM_PPC64;
#elif defined(__s390x__)
constexpr uint16_t kHostMachine = EM_S390;
#else
#error "unknown machine: add its EM_ value"
#endif

std::string DescribeForeign(const std::string& path) {
  unsigned char ident[EI_NIDENT] = {};
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd >= 0 && pread(fd.fd, ident, sizeof(ident), 0) == EI_NIDENT &&
      ident[EI_CLASS] == ELFCLASS32) {
    return "a 32-bit program; heapsight traces 64-bit programs only";
  }
  return "built for another architecture; heapsight traces programs of its own "
         "architecture only";
}

// Why ld.so will run `path` in secure-execution mode (AT_SECURE), where it
// ignores LD_PRELOAD for libraries outside the system directories; "" if it
// will not. The kernel sets AT_SECURE when exec changes the effective user
// or group (set-user-ID / set-group-ID bits honoured: not on a nosuid mount)
// or grants file capabilities.
std::string SecureExecutionReason(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";
  struct statvfs fs;
  bool nosuid = statvfs(path.c_str(), &fs) == 0 && (fs.f_flag & ST_NOSUID) != 0;
  std::string why;
  if (!nosuid && (st.st_mode & S_ISUID) != 0 && st.st_uid != getuid()) {
    const passwd* owner = getpwuid(st.st_uid);
    why = absl::StrCat("set-user-ID ",
                       owner != nullptr ? std::string(owner->pw_name) : absl::StrCat(st.st_uid));
  } else if (!nosuid && (st.st_mode & S_ISGID) != 0 && st.st_gid != getgid()) {
    const group* g = getgrgid(st.st_gid);
    why = absl::StrCat("set-group-ID ",
                       g != nullptr ? std::string(g->gr_name) : absl::StrCat(st.st_gid));
  } else if (!nosuid && getxattr(path.c_str(), "security.capability", nullptr, 0) > 0) {
    why = "given file capabilities";
  } else if (getuid() != geteuid() || getgid() != getegid()) {
    why = "started with changed user or group IDs";
  }
  if (why.empty()) return "";
  return absl::StrCat(path, " is ", why,
                      ": the dynamic loader runs it in secure-execution mode and ignores "
                      "LD_PRELOAD, so heapsight cannot trace it (run it without the "
                      "set-ID bit, e.g. as that user)");
}

// Scans the program headers of an ELF file for PT_INTERP.
template <typename Ehdr, typename Phdr>
Linkage ClassifyElf(int fd) {
  Ehdr eh;
  if (!ReadAt(fd, 0, &eh, sizeof(eh))) return Linkage::kUnknown;
  if (eh.e_phentsize != sizeof(Phdr) || eh.e_phnum == 0 || eh.e_phnum > 4096) {
    return Linkage::kUnknown;
  }
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Phdr ph;
    if (!ReadAt(fd, eh.e_phoff + uint64_t{i} * sizeof(Phdr), &ph, sizeof(ph))) {
      return Linkage::kUnknown;
    }
    if (ph.p_type == PT_INTERP) return Linkage::kDynamic;
  }
  return Linkage::kStatic;
}

// Follows a #! chain (bounded, as the kernel does) to the program that
// really runs: its classification, and its path in *final.
Linkage FinalInterpreter(const std::string& interpreter, int depth, std::string* final) {
  if (depth > 4 || interpreter.empty()) return Linkage::kUnknown;
  *final = interpreter;
  std::string next;
  Linkage linkage = ClassifyExecutable(interpreter, &next);
  if (linkage == Linkage::kScript) return FinalInterpreter(next, depth + 1, final);
  return linkage;
}

// Checks one candidate file. Returns 0 if it can be executed, else an errno.
int CheckExecutable(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return errno;
  if (S_ISDIR(st.st_mode)) return EISDIR;
  if (!S_ISREG(st.st_mode)) return EACCES;
  if (access(path.c_str(), X_OK) != 0) return errno;
  // access() is true for root whenever any x bit is set; execve needs one.
  if ((st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0) return EACCES;
  return 0;
}

}  // namespace

Linkage ClassifyExecutable(const std::string& path, std::string* interpreter) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) return Linkage::kUnknown;
  unsigned char ident[EI_NIDENT] = {};
  ssize_t n = pread(fd.fd, ident, sizeof(ident), 0);
  if (n >= 2 && ident[0] == '#' && ident[1] == '!') {
    char line[256] = {};
    ssize_t got = pread(fd.fd, line, sizeof(line) - 1, 2);
    if (got < 0) got = 0;
    line[got] = '\0';
    absl::string_view rest(line, static_cast<size_t>(got));
    rest = rest.substr(0, rest.find('\n'));
    size_t begin = rest.find_first_not_of(" \t");
    if (begin == absl::string_view::npos) {
      rest = {};
    } else {
      rest = rest.substr(begin);
      rest = rest.substr(0, rest.find_first_of(" \t"));
    }
    if (interpreter != nullptr) *interpreter = std::string(rest);
    return Linkage::kScript;
  }
  if (n != EI_NIDENT || std::memcmp(ident, ELFMAG, SELFMAG) != 0) return Linkage::kUnknown;
  if (ident[EI_CLASS] != kHostClass) return Linkage::kForeign;
  Elf64_Ehdr eh;
  if (!ReadAt(fd.fd, 0, &eh, sizeof(eh))) return Linkage::kUnknown;
  if (eh.e_machine != kHostMachine) return Linkage::kForeign;
  return ClassifyElf<Elf64_Ehdr, Elf64_Phdr>(fd.fd);
}

ResolvedProgram ResolveProgram(const std::string& program, const char* path_env) {
  ResolvedProgram result;
  if (program.empty()) {
    result.exit_code = kExitNotFound;
    result.message = "no program given";
    return result;
  }
  std::string found;
  int error = ENOENT;
  if (program.find('/') != std::string::npos) {
    error = CheckExecutable(program);
    found = program;
  } else {
    std::string path = path_env != nullptr ? path_env : "/bin:/usr/bin";
    for (absl::string_view dir : absl::StrSplit(path, ':')) {
      std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", program);
      int e = CheckExecutable(candidate);
      if (e == 0) {
        found = candidate;
        error = 0;
        break;
      }
      // Like execvp: a file that exists but cannot be run is remembered, and
      // reported if nothing runnable comes later.
      if (e != ENOENT && e != ENOTDIR && error == ENOENT) {
        found = candidate;
        error = e;
      }
    }
  }
  if (error == ENOENT || error == ENOTDIR) {
    result.exit_code = kExitNotFound;
    result.message = program.find('/') != std::string::npos
                         ? absl::StrCat(program, ": no such file")
                         : absl::StrCat(program, ": command not found");
    return result;
  }
  if (error != 0) {
    result.exit_code = kExitCannotExecute;
    result.message = absl::StrCat(found, ": cannot execute: ", std::strerror(error));
    return result;
  }
  std::string interpreter;
  std::string secure_check = found;  // what exec really runs
  switch (ClassifyExecutable(found, &interpreter)) {
    case Linkage::kStatic:
      result.exit_code = kExitStaticBinary;
      result.message =
          absl::StrCat(program, " is statically linked; LD_PRELOAD cannot trace it");
      return result;
    case Linkage::kForeign:
      result.exit_code = kExitForeignBinary;
      result.message = absl::StrCat(program, " is ", DescribeForeign(found));
      return result;
    case Linkage::kScript: {
      std::string final;
      Linkage linkage = FinalInterpreter(interpreter, 0, &final);
      if (linkage == Linkage::kStatic) {
        result.exit_code = kExitStaticBinary;
        result.message = absl::StrCat(program, " runs ", final,
                                      ", which is statically linked; LD_PRELOAD cannot trace it");
        return result;
      }
      if (linkage == Linkage::kForeign) {
        result.exit_code = kExitForeignBinary;
        result.message = absl::StrCat(program, " runs ", final, ", which is ",
                                      DescribeForeign(final));
        return result;
      }
      if (!final.empty()) secure_check = final;
      break;
    }
    default:
      break;
  }
  result.path = found;
  result.untraced_reason = SecureExecutionReason(secure_check);
  return result;
}

}  // namespace heapsight::record
