// tests/scenarios/programs/dlopen_program.cc: dlopen a plugin, let it
// allocate, dlclose it. argv[1] is the plugin's path, or its bare name,
// which the loader then finds through this executable's RUNPATH ($ORIGIN):
// only if dlopen still sees this executable as its caller.
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  void* handle = dlopen(argv[1], RTLD_NOW);
  if (handle == nullptr) {
    fprintf(stderr, "%s\n", dlerror());
    return 3;
  }
  auto fn = reinterpret_cast<void (*)()>(dlsym(handle, "plugin_allocate"));
  if (fn == nullptr) return 4;
  fn();
  dlclose(handle);
  puts("dlopen done");
  return 0;
}
