// tests/cli/record/program_resolver_test.cc: PATH lookup and the static / script
// checks of cli/record/program_resolver.
#include "cli/record/program_resolver.h"

#include <sys/stat.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/run_traced.h"

namespace heapsight::record {
namespace {

using ::testing::HasSubstr;

std::string WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  chmod(path.c_str(), mode);
  return path;
}

TEST(ResolveProgram, SearchesPathInOrder) {
  std::string a = heapsight::testing::MakeTempDir(), b = heapsight::testing::MakeTempDir();
  WriteFile(a + "/tool", "#!/bin/sh\n", 0644);  // not executable: skipped
  WriteFile(b + "/tool", "#!/bin/sh\n", 0755);
  std::string path = a + ":" + b;
  ResolvedProgram p = ResolveProgram("tool", path.c_str());
  EXPECT_EQ(p.exit_code, 0) << p.message;
  EXPECT_EQ(p.path, b + "/tool");
}

TEST(ResolveProgram, NotFoundIs127) {
  ResolvedProgram p = ResolveProgram("heapsight-none", "/nonexistent:/also-not");
  EXPECT_EQ(p.exit_code, kExitNotFound);
  EXPECT_EQ(p.message, "heapsight-none: command not found");
  EXPECT_EQ(ResolveProgram("", "/bin").exit_code, kExitNotFound);
}

TEST(ResolveProgram, FoundButNotExecutableIs126) {
  std::string dir = heapsight::testing::MakeTempDir();
  WriteFile(dir + "/tool", "#!/bin/sh\n", 0644);
  ResolvedProgram p = ResolveProgram("tool", dir.c_str());
  EXPECT_EQ(p.exit_code, kExitCannotExecute);
  EXPECT_THAT(p.message, HasSubstr("Permission denied"));
}

TEST(ResolveProgram, DynamicProgramsAndScriptsAreAccepted) {
  EXPECT_EQ(ResolveProgram("sh", "/usr/bin:/bin").exit_code, 0);
  std::string dir = heapsight::testing::MakeTempDir();
  std::string script = WriteFile(dir + "/run.sh", "#!/bin/sh\necho hi\n", 0755);
  EXPECT_EQ(ResolveProgram(script, nullptr).exit_code, 0);
  std::string interp;
  EXPECT_EQ(ClassifyExecutable(script, &interp), Linkage::kScript);
  EXPECT_EQ(interp, "/bin/sh");
  EXPECT_EQ(ClassifyExecutable("/bin/sh", nullptr), Linkage::kDynamic);
  EXPECT_EQ(ClassifyExecutable("/etc/passwd", nullptr), Linkage::kUnknown);
}

TEST(ResolveProgram, StaticProgramsAndScriptsRunningThemAreRefused) {
  std::string static_program = HEAPSIGHT_RECORD_STATIC_PROGRAM;
  if (static_program.empty()) GTEST_SKIP() << "no static libc on this machine";
  EXPECT_EQ(ClassifyExecutable(static_program, nullptr), Linkage::kStatic);
  ResolvedProgram p = ResolveProgram(static_program, nullptr);
  EXPECT_EQ(p.exit_code, kExitStaticBinary);
  EXPECT_EQ(p.message, static_program + " is statically linked; LD_PRELOAD cannot trace it");

  std::string dir = heapsight::testing::MakeTempDir();
  std::string script = WriteFile(dir + "/s", "#!" + static_program + " -x\n", 0755);
  ResolvedProgram s = ResolveProgram(script, nullptr);
  EXPECT_EQ(s.exit_code, kExitStaticBinary);
  EXPECT_THAT(s.message, HasSubstr("which is statically linked"));
}

}  // namespace
}  // namespace heapsight::record
