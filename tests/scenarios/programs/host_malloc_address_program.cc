// tests/scenarios/programs/host_malloc_address_program.cc: issue 12, host
// harm 5's false alarm. Built as a non-PIE executable that takes malloc's
// and free's addresses: the executable then has canonical PLT entries for
// them, and dlsym(RTLD_DEFAULT, "malloc") answers with the executable's
// PLT slot, though libc (or the preload) still serves malloc. Prints the
// bytes it allocated through the pointers.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void* (*volatile g_malloc)(size_t);
void (*volatile g_free)(void*);

int main() {
  // Taken in code (an absolute address in an instruction), not in data.
  g_malloc = &malloc;
  g_free = &free;
  char* p = static_cast<char*>(g_malloc(6001));
  strcpy(p, "hello");
  printf("%s\n", p);
  g_free(p);
  return 0;
}
