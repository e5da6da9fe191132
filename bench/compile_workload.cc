// bench/compile_workload.cc: the input of bench/compile_bench.py, which
// traces GCC's C++ compiler (cc1plus) compiling this file at -O2: a real
// program with millions of allocations from hundreds of thousands of
// distinct stacks (the parser's recursion, the optimizer's passes). The
// headers are what make it heavy; the code just instantiates enough of them.
#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <unordered_map>
#include <vector>

int main() {
  std::map<std::string, std::vector<int>> groups;
  for (int i = 0; i < 1000; ++i) groups[std::to_string(i % 37)].push_back(i);
  std::unordered_map<int, std::shared_ptr<std::string>> names;
  for (const auto& [key, values] : groups) {
    names[static_cast<int>(values.size())] = std::make_shared<std::string>(key);
  }
  std::vector<std::function<int(int)>> steps = {[](int x) { return x + 1; },
                                                [](int x) { return x * 2; }};
  int acc = 0;
  for (const auto& step : steps) acc = step(acc);
  std::regex pattern("a+b*");
  std::cout << groups.size() << ' ' << names.size() << ' ' << acc << ' '
            << std::regex_match("aab", pattern) << '\n';
  return 0;
}
