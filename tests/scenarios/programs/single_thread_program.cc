// tests/scenarios/programs/single_thread_program.cc: a single-threaded
// program that fills many trace chunks, then reports whether glibc still
// thinks it is single-threaded (issue 19: heapsight's writer is a raw
// task, not a glibc thread). Magic sizes: 3201 (main), 3202 (fork child).
//
//   churn N       allocates and frees N blocks of 3201 and keeps 7 of them
//                 live to the end; prints "single=<__libc_single_threaded>
//                 tasks=<entries of /proc/self/task>"
//   wait N        as churn, but first prints "ready" and waits until a
//                 line on stdin says "go" (between: attach), then churns,
//                 prints "done", waits for "end" (between: detach), prints
//                 the single= line and exits
//   fork N        churn N, then a fork child churns N blocks of 3202 and
//                 prints "child single=<...>"; the parent waits and prints
//                 its own line; exit 1 if the child failed
//   exec N        churn N, then exec itself with "churn N"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

void* g_keep[7];

void Churn(size_t size, long n) {
  for (long i = 0; i < n; ++i) {
    void* p = malloc(size);
    if (p == nullptr) exit(2);
    static_cast<volatile char*>(p)[0] = 1;
    free(p);
  }
  for (void*& k : g_keep) k = malloc(size);
}

// glibc's view, then the kernel's: the number of tasks in /proc/self/task
// (heapsight's raw writer task counts there, not in glibc's).
void Report(const char* who) {
  int single = static_cast<int>(__libc_single_threaded);
  int tasks = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) tasks += e->d_name[0] != '.';
    closedir(d);
  }
  printf("%ssingle=%d tasks=%d\n", who, single, tasks);
  fflush(stdout);
}

bool WaitFor(const char* word) {
  char line[64];
  while (fgets(line, sizeof line, stdin) != nullptr) {
    if (strncmp(line, word, strlen(word)) == 0) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 64;
  long n = atol(argv[2]);
  if (strcmp(argv[1], "churn") == 0) {
    Churn(3201, n);
    Report("");
    return 0;
  }
  if (strcmp(argv[1], "wait") == 0) {
    printf("ready\n");
    fflush(stdout);
    if (!WaitFor("go")) return 3;
    Churn(3201, n);
    printf("done\n");
    fflush(stdout);
    if (!WaitFor("end")) return 3;
    Report("");
    return 0;
  }
  if (strcmp(argv[1], "fork") == 0) {
    Churn(3201, n);
    pid_t pid = fork();
    if (pid < 0) return 4;
    if (pid == 0) {
      Churn(3202, n);
      Report("child ");
      exit(0);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return 1;
    Report("");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
  }
  if (strcmp(argv[1], "exec") == 0) {
    Churn(3201, n);
    fflush(stdout);
    char churn[] = "churn";
    char* args[] = {argv[0], churn, argv[2], nullptr};
    execv(argv[0], args);
    return 5;
  }
  return 64;
}
