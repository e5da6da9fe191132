/* tests/scenarios/programs/host_footprint_program.c: a plain C program for
 * issue 14's "the preload does not change its host" tests.
 *   maps   copies /proc/self/maps to stdout (which libraries are mapped);
 *   tls    prints the base name of every loaded object that has a TLS
 *          module (dl_iterate_phdr), one per line;
 *   alloc  makes a fixed set of allocations through every C API and stdio,
 *          frees most, keeps two (one reachable, one lost). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void* volatile g_keep;

static int CopyMaps(void) {
  int fd = open("/proc/self/maps", O_RDONLY);
  if (fd < 0) return 1;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    if (write(1, buf, (size_t)n) != n) return 1;
  }
  close(fd);
  return 0;
}

static int PrintTls(struct dl_phdr_info* info, size_t size, void* data) {
  (void)size;
  (void)data;
  if (info->dlpi_tls_modid == 0) return 0;
  const char* name = info->dlpi_name[0] != '\0' ? info->dlpi_name : "(program)";
  const char* base = strrchr(name, '/');
  printf("%s\n", base != NULL ? base + 1 : name);
  return 0;
}

static int Allocate(void) {
  void* p = malloc(3001);
  free(p);
  p = calloc(3, 1001);
  p = realloc(p, 3002);
  free(p);
  if (posix_memalign(&p, 64, 3003) != 0) return 1;
  free(p);
  p = aligned_alloc(64, 3008);
  free(p);
  char* s = strdup("heapsight");
  free(s);
  FILE* f = fopen("/proc/self/stat", "r");
  if (f == NULL) return 1;
  char line[256];
  if (fgets(line, sizeof line, f) == NULL) return 1;
  fclose(f);
  g_keep = malloc(3004);  /* reachable at exit */
  p = malloc(3005);       /* lost at exit */
  p = NULL;
  printf("allocated\n");
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "maps") == 0) return CopyMaps();
  if (strcmp(argv[1], "tls") == 0) return dl_iterate_phdr(PrintTls, NULL);
  if (strcmp(argv[1], "alloc") == 0) return Allocate();
  return 2;
}
