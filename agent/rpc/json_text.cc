#include "rpc/json_text.h"

#include <blockbuster/json.h>

namespace bb::jsontext {

namespace {

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::size_t skipSpace(std::string_view t, std::size_t i) {
  while (i < t.size() && isSpace(t[i])) ++i;
  return i;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Four hex digits at t[i..i+4): their value, or -1.
long hex4(std::string_view t, std::size_t i) {
  if (i + 4 > t.size()) return -1;
  long v = 0;
  for (std::size_t k = i; k < i + 4; ++k) {
    if (!isHex(t[k])) return -1;
    const char c = t[k];
    v = v * 16 + (isDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return v;
}

// t[i] == '"': past the closing quote, or npos. The SDK parser's rules: no raw control character,
// known escapes only, a high surrogate only with a low one after it.
std::size_t skipString(std::string_view t, std::size_t i) {
  for (++i; i < t.size();) {
    const char c = t[i++];
    if (c == '"') return i;
    if (static_cast<unsigned char>(c) < 0x20) return npos;
    if (c != '\\') continue;
    if (i >= t.size()) return npos;
    const char e = t[i++];
    switch (e) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        break;
      case 'u': {
        const long cp = hex4(t, i);
        if (cp < 0) return npos;
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (i + 2 > t.size() || t[i] != '\\' || t[i + 1] != 'u') return npos;
          const long lo = hex4(t, i + 2);
          if (lo < 0xDC00 || lo > 0xDFFF) return npos;
          i += 6;
        }
        break;
      }
      default:
        return npos;
    }
  }
  return npos;
}

std::size_t skipNumber(std::string_view t, std::size_t i) {
  if (t[i] == '-') ++i;
  if (i >= t.size() || !isDigit(t[i])) return npos;
  if (t[i] == '0') {
    ++i;
  } else {
    while (i < t.size() && isDigit(t[i])) ++i;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    if (i >= t.size() || !isDigit(t[i])) return npos;
    while (i < t.size() && isDigit(t[i])) ++i;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (i >= t.size() || !isDigit(t[i])) return npos;
    while (i < t.size() && isDigit(t[i])) ++i;
  }
  return i;
}

std::size_t skipLiteral(std::string_view t, std::size_t i, std::string_view word) {
  return t.substr(i, word.size()) == word ? i + word.size() : npos;
}

// A container's members (object: `"name": value`, array: value), t[i] its opening bracket.
std::size_t skipContainer(std::string_view t, std::size_t i, int depth) {
  const bool object = t[i] == '{';
  const char close = object ? '}' : ']';
  i = skipSpace(t, i + 1);
  if (i < t.size() && t[i] == close) return i + 1;
  for (;;) {
    i = skipSpace(t, i);
    if (object) {
      if (i >= t.size() || t[i] != '"') return npos;
      i = skipString(t, i);
      if (i == npos) return npos;
      i = skipSpace(t, i);
      if (i >= t.size() || t[i] != ':') return npos;
      i = skipSpace(t, i + 1);
    }
    i = skipValue(t, i, depth + 1);
    if (i == npos) return npos;
    i = skipSpace(t, i);
    if (i < t.size() && t[i] == ',') {
      ++i;
      continue;
    }
    if (i < t.size() && t[i] == close) return i + 1;
    return npos;
  }
}

}  // namespace

std::size_t skipValue(std::string_view t, std::size_t i, int depth) {
  if (depth > blockbuster::Json::kMaxDepth || i >= t.size()) return npos;
  const char c = t[i];
  if (c == '{' || c == '[') return skipContainer(t, i, depth);
  if (c == '"') return skipString(t, i);
  if (c == 't') return skipLiteral(t, i, "true");
  if (c == 'f') return skipLiteral(t, i, "false");
  if (c == 'n') return skipLiteral(t, i, "null");
  if (c == '-' || isDigit(c)) return skipNumber(t, i);
  return npos;
}

bool valid(std::string_view text) {
  const std::size_t end = skipValue(text, skipSpace(text, 0));
  return end != npos && skipSpace(text, end) == text.size();
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
  return text;
}

bool forEachMember(
    std::string_view text,
    const std::function<void(const std::string& name, std::string_view value)>& member) {
  text = trim(text);
  if (text.empty() || text.front() != '{' || !valid(text)) return false;
  // Valid: every step below finds what it expects.
  std::size_t i = skipSpace(text, 1);
  while (text[i] != '}') {
    const std::size_t name_end = skipString(text, i);
    const std::string_view quoted = text.substr(i, name_end - i);
    const std::string name = quoted.find('\\') == std::string_view::npos
                                 ? std::string(quoted.substr(1, quoted.size() - 2))
                                 : blockbuster::Json::parse(quoted).asString();
    i = skipSpace(text, skipSpace(text, name_end) + 1);  // past ':'
    const std::size_t value_end = skipValue(text, i, 1);
    member(name, text.substr(i, value_end - i));
    i = skipSpace(text, value_end);
    if (text[i] == ',') i = skipSpace(text, i + 1);
  }
  return true;
}

}  // namespace bb::jsontext
