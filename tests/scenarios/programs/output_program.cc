// tests/scenarios/programs/output_program.cc: prints to stdout and stderr,
// allocates, exits with a given status.
#include <stdio.h>
#include <stdlib.h>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  std::vector<std::string> words;
  for (int i = 0; i < 1000; ++i) words.push_back("word" + std::to_string(i));
  printf("%zu words, last %s\n", words.size(), words.back().c_str());
  fprintf(stderr, "to stderr\n");
  return argc > 1 ? atoi(argv[1]) : 0;
}
