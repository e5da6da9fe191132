// tests/analyzer/output/xml_checker.cc: see xml_checker.h.
#include "tests/analyzer/output/xml_checker.h"

#include <cctype>
#include <vector>

namespace heapsight::testing {
namespace {

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == ':' ||
         c == '.';
}

// Checks an entity reference at doc[i] == '&'; returns its length or 0.
size_t EntityLength(std::string_view doc, size_t i) {
  for (std::string_view e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"}) {
    if (doc.substr(i, e.size()) == e) return e.size();
  }
  if (doc.substr(i, 2) == "&#") {
    size_t j = i + 2;
    bool hex = j < doc.size() && doc[j] == 'x';
    if (hex) ++j;
    size_t start = j;
    while (j < doc.size() && (hex ? std::isxdigit(static_cast<unsigned char>(doc[j]))
                                  : std::isdigit(static_cast<unsigned char>(doc[j])))) {
      ++j;
    }
    if (j > start && j < doc.size() && doc[j] == ';') return j + 1 - i;
  }
  return 0;
}

std::string CheckText(std::string_view doc, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    if (doc[i] == '&' && EntityLength(doc, i) == 0) {
      return "bad entity at offset " + std::to_string(i);
    }
  }
  return "";
}

std::string CheckUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || (c >= 0xC0 && c < 0xC2) || i + n > s.size()) {
      return "invalid UTF-8 at offset " + std::to_string(i);
    }
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
        return "invalid UTF-8 at offset " + std::to_string(i);
      }
    }
    if (n == 1 && c < 0x20 && c != '\n' && c != '\r' && c != '\t') {
      return "control character at offset " + std::to_string(i);
    }
    i += n;
  }
  return "";
}

}  // namespace

std::string CheckXmlWellFormed(std::string_view doc) {
  if (std::string e = CheckUtf8(doc); !e.empty()) return e;
  std::vector<std::string> open;
  bool seen_root = false;
  size_t i = 0;
  while (i < doc.size()) {
    size_t lt = doc.find('<', i);
    size_t text_end = lt == std::string_view::npos ? doc.size() : lt;
    if (std::string e = CheckText(doc, i, text_end); !e.empty()) return e;
    if (open.empty()) {
      for (size_t k = i; k < text_end; ++k) {
        if (!std::isspace(static_cast<unsigned char>(doc[k]))) {
          return "text outside the root element at offset " + std::to_string(k);
        }
      }
    }
    if (lt == std::string_view::npos) break;
    i = lt;
    if (doc.substr(i, 9) == "<![CDATA[") {
      size_t end = doc.find("]]>", i);
      if (end == std::string_view::npos) return "unterminated CDATA";
      if (open.empty()) return "CDATA outside the root element";
      i = end + 3;
      continue;
    }
    if (doc.substr(i, 4) == "<!--") {
      size_t end = doc.find("-->", i);
      if (end == std::string_view::npos) return "unterminated comment";
      i = end + 3;
      continue;
    }
    if (doc.substr(i, 2) == "<?") {
      size_t end = doc.find("?>", i);
      if (end == std::string_view::npos) return "unterminated processing instruction";
      i = end + 2;
      continue;
    }
    bool closing = doc.substr(i, 2) == "</";
    size_t j = i + (closing ? 2 : 1);
    size_t name_start = j;
    while (j < doc.size() && IsNameChar(doc[j])) ++j;
    if (j == name_start) return "tag without a name at offset " + std::to_string(i);
    std::string name(doc.substr(name_start, j - name_start));
    if (closing) {
      while (j < doc.size() && std::isspace(static_cast<unsigned char>(doc[j]))) ++j;
      if (j >= doc.size() || doc[j] != '>') return "bad closing tag at offset " + std::to_string(i);
      if (open.empty() || open.back() != name) {
        return "closing </" + name + "> does not match at offset " + std::to_string(i);
      }
      open.pop_back();
      i = j + 1;
      continue;
    }
    // Attributes.
    while (true) {
      size_t ws = j;
      while (j < doc.size() && std::isspace(static_cast<unsigned char>(doc[j]))) ++j;
      if (j >= doc.size()) return "unterminated tag <" + name + ">";
      if (doc[j] == '>' || doc.substr(j, 2) == "/>") break;
      if (j == ws) return "missing space before attribute at offset " + std::to_string(j);
      size_t an = j;
      while (j < doc.size() && IsNameChar(doc[j])) ++j;
      if (j == an) return "bad attribute name at offset " + std::to_string(j);
      if (j >= doc.size() || doc[j] != '=') return "attribute without '=' at offset " + std::to_string(j);
      ++j;
      if (j >= doc.size() || (doc[j] != '"' && doc[j] != '\'')) {
        return "unquoted attribute at offset " + std::to_string(j);
      }
      char q = doc[j++];
      size_t end = doc.find(q, j);
      if (end == std::string_view::npos) return "unterminated attribute value";
      for (size_t k = j; k < end; ++k) {
        if (doc[k] == '<') return "'<' in attribute value at offset " + std::to_string(k);
      }
      if (std::string e = CheckText(doc, j, end); !e.empty()) return e;
      j = end + 1;
    }
    if (open.empty() && seen_root) return "second root element <" + name + ">";
    seen_root = true;
    if (doc[j] == '/') {
      i = j + 2;
    } else {
      open.push_back(name);
      i = j + 1;
    }
  }
  if (!open.empty()) return "unclosed <" + open.back() + ">";
  if (!seen_root) return "no root element";
  return "";
}

}  // namespace heapsight::testing
