// analyzer/symbols/symbol_names.cc: see symbol_names.h.
#include "analyzer/symbols/symbol_names.h"

#include <cstddef>

#include "absl/strings/str_format.h"

namespace heapsight::analyzer {
namespace {

constexpr size_t kNpos = std::string_view::npos;
constexpr std::string_view kOperator = "operator";

bool IsIdentifierChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$';
}

bool IsDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// If the keyword "operator" starts at s[i] as a whole word, the length of
// the keyword with its operator token ("operator<<" -> 10, "operator new[]"
// -> 14); for a conversion or literal operator ("operator bool") the
// keyword's alone, the type after it being an ordinary name. 0 otherwise.
size_t OperatorLength(std::string_view s, size_t i) {
  if (s.substr(i, kOperator.size()) != kOperator) return 0;
  if (i > 0 && IsIdentifierChar(s[i - 1])) return 0;
  size_t j = i + kOperator.size();
  if (j < s.size() && IsIdentifierChar(s[j])) return 0;  // "operators"
  for (std::string_view word : {" new[]", " delete[]", " new", " delete", " co_await"}) {
    if (s.substr(j, word.size()) == word &&
        (j + word.size() == s.size() || !IsIdentifierChar(s[j + word.size()]))) {
      return kOperator.size() + word.size();
    }
  }
  // Longest token first: "operator<=" is not "operator<" then "=". The
  // demangler separates a template argument list from a token ending in
  // '<' with a space ("operator<< <char>"), so the longest match is right.
  static constexpr std::string_view kTokens[] = {
      "<=>", "<<=", ">>=", "->*", "()", "[]", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||",
      "++",  "--",  "+=",  "-=",  "*=", "/=", "%=", "^=", "&=", "|=", "->", "<",  ">",  "+",
      "-",   "*",   "/",   "%",   "^",  "&",  "|",  "~",  "!",  "=",  ","};
  for (std::string_view token : kTokens) {
    if (s.substr(j, token.size()) == token) return kOperator.size() + token.size();
  }
  return kOperator.size();
}

// Where the brackets of a demangled name sit at depth 0 (outside <>, (),
// [] and {}), operator tokens read as one word. Inside parentheses
// (parameter types, decltype expressions: "a<b" there is a comparison) and
// braces ("{lambda(int)#1}") only their own kind of bracket counts.
struct TopLevel {
  size_t last_open = kNpos;   // the last '(' at depth 0
  size_t last_close = kNpos;  // the ')' that closes it
  size_t last_space = kNpos;  // the last space at depth 0 before any operator name
  bool has_operator = false;  // the keyword "operator" at depth 0
};

TopLevel ScanTopLevel(std::string_view s) {
  TopLevel t;
  std::string stack;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    char top = stack.empty() ? '\0' : stack.back();
    if (top == '(' || top == '{') {
      char close = top == '(' ? ')' : '}';
      if (c == top) {
        stack.push_back(c);
      } else if (c == close) {
        stack.pop_back();
        if (stack.empty() && c == ')') t.last_close = i;
      }
      continue;
    }
    if (size_t n = OperatorLength(s, i); n != 0) {
      if (stack.empty()) t.has_operator = true;
      i += n - 1;
      continue;
    }
    switch (c) {
      case '(':
        if (stack.empty()) {
          t.last_open = i;
          t.last_close = kNpos;
        }
        [[fallthrough]];
      case '<':
      case '[':
      case '{':
        stack.push_back(c);
        break;
      case '>':
        if (top == '<') stack.pop_back();
        break;
      case ']':
        if (top == '[') stack.pop_back();
        break;
      case ' ':
        // After an operator's name the rest is its own ("operator<< <char>",
        // "operator char const*").
        if (stack.empty() && !t.has_operator) t.last_space = i;
        break;
      default:
        break;
    }
  }
  return t;
}

bool EndsWithWord(std::string_view s, std::string_view word) {
  if (s.size() < word.size() || s.substr(s.size() - word.size()) != word) return false;
  if (s.size() == word.size()) return true;
  char before = s[s.size() - word.size() - 1];
  return before == ' ' || before == ')' || before == '&';
}

// Removes trailing cv/ref/noexcept qualifiers and bracketed suffixes
// ("[clone .cold]") after a parameter list.
std::string_view TrimQualifiers(std::string_view s) {
  while (true) {
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    if (!s.empty() && s.back() == '&') {
      s.remove_suffix(1);
      continue;
    }
    if (!s.empty() && s.back() == ']') {  // [clone .cold]
      size_t open = s.rfind('[');
      if (open == kNpos) return s;
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

// "parse.isra.0" -> "parse", "main.cold" -> "main": the suffixes GCC and
// LLVM give the clones of a function that keeps C linkage (a C++ one
// demangles to " [clone .isra.0]" instead). Only the known suffixes, so a
// Rust name with ".." in it stays whole.
std::string_view StripCloneSuffixes(std::string_view s) {
  static constexpr std::string_view kClones[] = {"cold",     "isra",       "constprop", "part",
                                                 "lto_priv", "localalias", "llvm",      "clone"};
  while (true) {
    std::string_view rest = s;
    for (size_t dot; (dot = rest.rfind('.')) != kNpos && IsDigits(rest.substr(dot + 1));) {
      rest = rest.substr(0, dot);
    }
    size_t dot = rest.rfind('.');
    if (dot == kNpos || dot == 0) return s;
    bool clone = false;
    for (std::string_view k : kClones) clone = clone || rest.substr(dot + 1) == k;
    if (!clone) return s;
    s = rest.substr(0, dot);
  }
}

}  // namespace

std::string BareFunctionName(std::string_view demangled) {
  std::string_view full = StripCloneSuffixes(demangled);
  std::string_view s = TrimQualifiers(full);
  if (s.empty() || s.back() != ')') return std::string(full);
  TopLevel whole = ScanTopLevel(s);
  // The parameter list is the last group at depth 0 and ends the name.
  if (whole.last_open == kNpos || whole.last_open == 0 || whole.last_close != s.size() - 1) {
    return std::string(full);
  }
  std::string_view name = s.substr(0, whole.last_open);
  // A leading return type ends at the last space at depth 0 before the name.
  if (size_t space = ScanTopLevel(name).last_space; space != kNpos) {
    name = name.substr(space + 1);
  }
  while (!name.empty() && (name.front() == '*' || name.front() == '&')) name.remove_prefix(1);
  if (name.empty()) return std::string(full);
  return std::string(name);
}

std::string StripSymbolVersion(std::string_view name) {
  size_t at = name.find('@');
  if (at == kNpos || at == 0) return std::string(name);
  return std::string(name.substr(0, at));
}

std::string UnknownFrameName(std::string_view module_path, uint64_t module_offset,
                             uint64_t address) {
  if (module_path.empty()) return absl::StrFormat("0x%x", address);
  std::string base = BaseName(module_path);
  return absl::StrFormat("%s+0x%x", base.empty() ? module_path : base, module_offset);
}

std::string BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == kNpos ? path : path.substr(slash + 1));
}

}  // namespace heapsight::analyzer
