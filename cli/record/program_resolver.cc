// cli/record/program_resolver.cc: see program_resolver.h.
#include "cli/record/program_resolver.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
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

// Resolves a #! chain (bounded, as the kernel does) and reports whether the
// final interpreter is statically linked.
bool InterpreterIsStatic(const std::string& interpreter, int depth) {
  if (depth > 4 || interpreter.empty()) return false;
  std::string next;
  switch (ClassifyExecutable(interpreter, &next)) {
    case Linkage::kStatic:
      return true;
    case Linkage::kScript:
      return InterpreterIsStatic(next, depth + 1);
    default:
      return false;
  }
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
  if (ident[EI_CLASS] == ELFCLASS64) return ClassifyElf<Elf64_Ehdr, Elf64_Phdr>(fd.fd);
  if (ident[EI_CLASS] == ELFCLASS32) return ClassifyElf<Elf32_Ehdr, Elf32_Phdr>(fd.fd);
  return Linkage::kUnknown;
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
  switch (ClassifyExecutable(found, &interpreter)) {
    case Linkage::kStatic:
      result.exit_code = kExitStaticBinary;
      result.message =
          absl::StrCat(program, " is statically linked; LD_PRELOAD cannot trace it");
      return result;
    case Linkage::kScript:
      if (InterpreterIsStatic(interpreter, 0)) {
        result.exit_code = kExitStaticBinary;
        result.message = absl::StrCat(program, " runs ", interpreter,
                                      ", which is statically linked; LD_PRELOAD cannot trace it");
        return result;
      }
      break;
    default:
      break;
  }
  result.path = found;
  return result;
}

}  // namespace heapsight::record
