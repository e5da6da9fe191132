// cli/record/program_resolver.h: turns the PROGRAM of `heapsight record
// -- PROGRAM` into a path to execute, and checks that LD_PRELOAD can trace it.
#ifndef HEAPSIGHT_ANALYZER_RECORD_PROGRAM_RESOLVER_H_
#define HEAPSIGHT_ANALYZER_RECORD_PROGRAM_RESOLVER_H_

#include <string>

namespace heapsight::record {

// Exit statuses of `heapsight record` when PROGRAM cannot be run, following
// the shell's conventions.
inline constexpr int kExitNotFound = 127;       // not found on PATH / no such file
inline constexpr int kExitCannotExecute = 126;  // not executable, a directory, not a program
inline constexpr int kExitStaticBinary = 126;   // statically linked: LD_PRELOAD cannot trace it
inline constexpr int kExitForeignBinary = 126;  // 32-bit or another architecture's ELF

struct ResolvedProgram {
  std::string path;     // what to pass to execve; empty on error
  int exit_code = 0;    // 0, or one of kExit* above
  std::string message;  // why it cannot be run, without the "heapsight: " prefix
  // Non-empty when PROGRAM runs but the dynamic loader will ignore
  // LD_PRELOAD in it (secure-execution mode: set-user-ID, set-group-ID or
  // file capabilities): why nothing of it will be traced.
  std::string untraced_reason;
};

// Looks `program` up like execvp does: a name with a '/' is used as is,
// otherwise every directory of `path_env` (PATH; "/bin:/usr/bin" if unset)
// is tried in order. Then checks the file: it must be executable, and an ELF
// file must be dynamically linked (have a PT_INTERP program header). A script
// (#!) is accepted when its interpreter is dynamically linked: the
// interpreter is what gets traced. An ELF file of another class (32-bit) or
// machine than heapsight's is refused (kExitForeignBinary): the preload is a
// 64-bit library of this machine and ld.so would only skip it.
ResolvedProgram ResolveProgram(const std::string& program, const char* path_env);

enum class Linkage { kDynamic, kStatic, kScript, kForeign, kUnknown };

// Reads the start of `path`: an ELF file of another class or machine than
// this program's is kForeign, another ELF executable is kDynamic or kStatic, a
// file starting with "#!" is kScript, anything else kUnknown. For a script,
// *interpreter receives the interpreter path from the #! line.
Linkage ClassifyExecutable(const std::string& path, std::string* interpreter);

}  // namespace heapsight::record

#endif  // HEAPSIGHT_ANALYZER_RECORD_PROGRAM_RESOLVER_H_
