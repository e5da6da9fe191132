// analyzer/symbols/symbol_names.cc: see symbol_names.h.
#include "analyzer/symbols/symbol_names.h"

#include <cstddef>

#include "absl/strings/str_format.h"

namespace heapsight::analyzer::output {
namespace {

bool EndsWithWord(std::string_view s, std::string_view word) {
  if (s.size() < word.size() || s.substr(s.size() - word.size()) != word) return false;
  if (s.size() == word.size()) return true;
  char before = s[s.size() - word.size() - 1];
  return before == ' ' || before == ')' || before == '&';
}

// Removes trailing cv/ref/noexcept/abi qualifiers after a parameter list.
std::string_view TrimQualifiers(std::string_view s) {
  while (true) {
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    if (!s.empty() && s.back() == '&') {
      s.remove_suffix(1);
      continue;
    }
    if (!s.empty() && s.back() == ']') {  // [abi:cxx11]
      size_t open = s.rfind('[');
      if (open == std::string_view::npos) return s;
      s = s.substr(0, open);
      continue;
    }
    bool trimmed = false;
    for (std::string_view word : {"const", "volatile", "noexcept", "throw()"}) {
      if (EndsWithWord(s, word)) {
        s.remove_suffix(word.size());
        trimmed = true;
        break;
      }
    }
    if (!trimmed) return s;
  }
}

// True when name[i] is a punctuation character of an operator name such as
// "operator<<", "operator->" or "operator<=>": "operator" followed only by
// operator punctuation up to and including position i.
bool InOperatorToken(std::string_view name, size_t i) {
  constexpr std::string_view kOperator = "operator";
  constexpr std::string_view kPunct = "<>=-!+*/%^&|~[],";
  size_t j = i;
  while (j > 0 && i - j < 3 && kPunct.find(name[j]) != std::string_view::npos) --j;
  size_t end = j + 1;  // one past the last letter of the candidate "operator"
  if (end < kOperator.size()) return false;
  return name.substr(end - kOperator.size(), kOperator.size()) == kOperator && end <= i;
}

}  // namespace

std::string StripParameters(std::string_view demangled) {
  std::string_view s = TrimQualifiers(demangled);
  if (s.empty() || s.back() != ')') return std::string(demangled);
  // Find the '(' matching the final ')'.
  int depth = 0;
  size_t open = std::string_view::npos;
  for (size_t i = s.size(); i-- > 0;) {
    if (s[i] == ')') {
      ++depth;
    } else if (s[i] == '(') {
      if (--depth == 0) {
        open = i;
        break;
      }
    }
  }
  if (open == std::string_view::npos || open == 0) return std::string(demangled);
  std::string_view name = s.substr(0, open);
  // "foo::operator()" without a parameter list: the parentheses are the
  // operator's own, the name is already short.
  if (name.size() >= 8 && name.substr(name.size() - 8) == "operator") {
    return std::string(demangled);
  }
  // Drop a leading return type: the last space at template/paren depth 0
  // that is not part of an operator name ("operator new", "operator delete[]",
  // conversion operators).
  int angle = 0, paren = 0;
  size_t cut = std::string_view::npos;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if ((c == '<' || c == '>') && InOperatorToken(name, i)) continue;  // operator<<
    if (c == '<') {
      ++angle;
    } else if (c == '>') {
      if (angle > 0) --angle;
    } else if (c == '(') {
      ++paren;
    } else if (c == ')') {
      if (paren > 0) --paren;
    } else if (c == ' ' && angle == 0 && paren == 0) {
      // "operator new", "operator<< <char>": the rest is the operator's name.
      if (i >= 8 && name.substr(i - 8, 8) == "operator") break;
      if (i >= 1 && InOperatorToken(name, i - 1)) break;
      cut = i;
    }
  }
  if (cut != std::string_view::npos) name = name.substr(cut + 1);
  while (!name.empty() && (name.front() == '*' || name.front() == '&')) name.remove_prefix(1);
  if (name.empty()) return std::string(demangled);
  return std::string(name);
}

std::string StripSymbolVersion(std::string_view name) {
  size_t at = name.find('@');
  if (at == std::string_view::npos || at == 0) return std::string(name);
  std::string_view version = name.substr(at + 1);
  if (!version.empty() && version.front() == '@') version.remove_prefix(1);
  if (version.empty()) return std::string(name);
  for (char c : version) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.';
    if (!ok) return std::string(name);
  }
  return std::string(name.substr(0, at));
}

std::string UnknownFrameName(std::string_view module_path, uint64_t module_offset,
                             uint64_t address) {
  if (module_path.empty()) return absl::StrFormat("0x%x", address);
  size_t slash = module_path.rfind('/');
  std::string_view base =
      slash == std::string_view::npos ? module_path : module_path.substr(slash + 1);
  if (base.empty()) base = module_path;
  return absl::StrFormat("%s+0x%x", base, module_offset);
}

}  // namespace heapsight::analyzer::output
