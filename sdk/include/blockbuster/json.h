// A small JSON value for plugin authors: parse, build, dump. Header-only, C++17, std only.
//
// Why not a third-party library: the SDK must build anywhere with nothing but a compiler, and a
// plugin's JSON never crosses the .so boundary as a C++ object (only as text), so a plugin may
// use any JSON library it likes; this one is here so that it need not.
//
// Numbers keep their integer value exactly when the text is an integer that fits in int64.
// Objects keep insertion order (the order of the guide's examples). Parsing is iterative over
// input size but recursive over nesting, capped at kMaxDepth levels.
//
// Thread-safety: a Json is a value; concurrent reads are safe, writes need external locking.
#ifndef BLOCKBUSTER_JSON_H_
#define BLOCKBUSTER_JSON_H_

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blockbuster {

/// Thrown by Json::parse on malformed text, and by the as*() accessors on a type mismatch.
class JsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Json {
 public:
  enum class Type { Null, Bool, Int, Double, String, Array, Object };
  using Array = std::vector<Json>;
  using Member = std::pair<std::string, Json>;
  using Object = std::vector<Member>;
  static constexpr int kMaxDepth = 128;

  Json() noexcept = default;
  Json(std::nullptr_t) noexcept {}                                     // NOLINT
  Json(bool b) noexcept : type_(Type::Bool), b_(b) {}                  // NOLINT
  Json(int v) noexcept : type_(Type::Int), i_(v) {}                    // NOLINT
  Json(long v) noexcept : type_(Type::Int), i_(v) {}                   // NOLINT
  Json(long long v) noexcept : type_(Type::Int), i_(v) {}              // NOLINT
  Json(unsigned v) noexcept : type_(Type::Int), i_(v) {}               // NOLINT
  Json(unsigned long v) : Json(static_cast<unsigned long long>(v)) {}  // NOLINT
  Json(unsigned long long v) {                                         // NOLINT
    if (v <= static_cast<unsigned long long>(INT64_MAX)) {
      type_ = Type::Int;
      i_ = static_cast<int64_t>(v);
    } else {
      type_ = Type::Double;
      d_ = static_cast<double>(v);
    }
  }
  Json(double v) noexcept : type_(Type::Double), d_(v) {}                              // NOLINT
  Json(const char* s) : type_(Type::String), s_(s) {}                                  // NOLINT
  Json(std::string s) : type_(Type::String), s_(std::move(s)) {}                       // NOLINT
  Json(std::string_view s) : type_(Type::String), s_(s) {}                             // NOLINT
  Json(Array a) : type_(Type::Array), a_(std::make_shared<Array>(std::move(a))) {}     // NOLINT
  Json(Object o) : type_(Type::Object), o_(std::make_shared<Object>(std::move(o))) {}  // NOLINT
  /// Builds an object: Json{{"a", 1}, {"b", "x"}}.
  Json(std::initializer_list<Member> members)
      : type_(Type::Object), o_(std::make_shared<Object>(members)) {}

  static Json array() { return Json(Array{}); }
  static Json object() { return Json(Object{}); }

  Json(const Json& other) { copyFrom(other); }
  Json(Json&&) noexcept = default;
  Json& operator=(const Json& other) {
    if (this != &other) copyFrom(other);
    return *this;
  }
  Json& operator=(Json&&) noexcept = default;

  Type type() const noexcept { return type_; }
  bool isNull() const noexcept { return type_ == Type::Null; }
  bool isBool() const noexcept { return type_ == Type::Bool; }
  bool isInt() const noexcept { return type_ == Type::Int; }
  bool isNumber() const noexcept { return type_ == Type::Int || type_ == Type::Double; }
  bool isString() const noexcept { return type_ == Type::String; }
  bool isArray() const noexcept { return type_ == Type::Array; }
  bool isObject() const noexcept { return type_ == Type::Object; }

  bool asBool() const {
    if (type_ != Type::Bool) throw JsonError("expected a boolean, got " + typeName());
    return b_;
  }
  /// The integer value; a double with an integral value is accepted.
  int64_t asInt() const {
    if (type_ == Type::Int) return i_;
    if (type_ == Type::Double && std::isfinite(d_) && std::floor(d_) == d_ &&
        std::fabs(d_) < 9.2e18)
      return static_cast<int64_t>(d_);
    throw JsonError("expected an integer, got " + typeName());
  }
  double asDouble() const {
    if (type_ == Type::Int) return static_cast<double>(i_);
    if (type_ == Type::Double) return d_;
    throw JsonError("expected a number, got " + typeName());
  }
  const std::string& asString() const {
    if (type_ != Type::String) throw JsonError("expected a string, got " + typeName());
    return s_;
  }
  const Array& asArray() const {
    if (type_ != Type::Array) throw JsonError("expected an array, got " + typeName());
    return *a_;
  }
  const Object& asObject() const {
    if (type_ != Type::Object) throw JsonError("expected an object, got " + typeName());
    return *o_;
  }

  /// Number of elements (array) or members (object); 0 otherwise.
  size_t size() const noexcept {
    if (type_ == Type::Array) return a_->size();
    if (type_ == Type::Object) return o_->size();
    return 0;
  }

  /// The member `key`, or nullptr when this is not an object or has no such member.
  const Json* find(std::string_view key) const noexcept {
    if (type_ != Type::Object) return nullptr;
    for (const auto& m : *o_)
      if (m.first == key) return &m.second;
    return nullptr;
  }
  bool contains(std::string_view key) const noexcept { return find(key) != nullptr; }

  /// Read access: a missing member or a non-object yields null (never throws).
  const Json& operator[](std::string_view key) const noexcept {
    const Json* j = find(key);
    return j ? *j : nullNode();
  }
  const Json& operator[](size_t i) const noexcept {
    if (type_ != Type::Array || i >= a_->size()) return nullNode();
    return (*a_)[i];
  }
  /// Write access: makes this an object if null, adds the member if missing.
  Json& operator[](std::string_view key) {
    if (type_ == Type::Null) *this = object();
    if (type_ != Type::Object) throw JsonError("cannot index " + typeName() + " by key");
    for (auto& m : mutableObject())
      if (m.first == key) return m.second;
    mutableObject().emplace_back(std::string(key), Json());
    return o_->back().second;
  }
  /// Write access to an existing element; throws JsonError when out of range.
  Json& operator[](size_t i) {
    if (type_ != Type::Array || i >= a_->size())
      throw JsonError("index " + std::to_string(i) + " is out of range of " + typeName());
    return mutableArray()[i];
  }
  Json& operator[](int i) { return (*this)[static_cast<size_t>(i < 0 ? SIZE_MAX : i)]; }
  const Json& operator[](int i) const noexcept {
    return i < 0 ? nullNode() : (*this)[static_cast<size_t>(i)];
  }
  /// Appends to an array (a null becomes an empty array first).
  void push_back(Json v) {
    if (type_ == Type::Null) *this = array();
    if (type_ != Type::Array) throw JsonError("cannot append to " + typeName());
    mutableArray().push_back(std::move(v));
  }

  /// Optional-style getters: the value when present and of the right type, else `fallback`.
  double number(std::string_view key, double fallback) const noexcept {
    const Json* j = find(key);
    return (j && j->isNumber()) ? j->asDouble() : fallback;
  }

  std::string typeName() const {
    switch (type_) {
      case Type::Null:
        return "null";
      case Type::Bool:
        return "boolean";
      case Type::Int:
      case Type::Double:
        return "number";
      case Type::String:
        return "string";
      case Type::Array:
        return "array";
      case Type::Object:
        return "object";
    }
    return "?";
  }

  /// Compact JSON text. NaN and infinities are written as null (JSON has no such numbers).
  std::string dump() const {
    std::string out;
    dumpTo(out);
    return out;
  }
  void dumpTo(std::string& out) const {
    switch (type_) {
      case Type::Null:
        out += "null";
        break;
      case Type::Bool:
        out += b_ ? "true" : "false";
        break;
      case Type::Int:
        out += std::to_string(i_);
        break;
      case Type::Double:
        appendDouble(out, d_);
        break;
      case Type::String:
        appendString(out, s_);
        break;
      case Type::Array: {
        out += '[';
        bool first = true;
        for (const auto& v : *a_) {
          if (!first) out += ',';
          first = false;
          v.dumpTo(out);
        }
        out += ']';
        break;
      }
      case Type::Object: {
        out += '{';
        bool first = true;
        for (const auto& m : *o_) {
          if (!first) out += ',';
          first = false;
          appendString(out, m.first);
          out += ':';
          m.second.dumpTo(out);
        }
        out += '}';
        break;
      }
    }
  }

  /// Parses JSON text; throws JsonError naming the offset of the first problem.
  static Json parse(std::string_view text) {
    Parser p{text, 0};
    p.skipWs();
    Json v = p.value(0);
    p.skipWs();
    if (p.pos != text.size()) p.fail("unexpected trailing characters");
    return v;
  }

  friend bool operator==(const Json& a, const Json& b) {
    if (a.isNumber() && b.isNumber()) {
      if (a.type_ == Type::Int && b.type_ == Type::Int) return a.i_ == b.i_;
      return a.asDouble() == b.asDouble();
    }
    if (a.type_ != b.type_) return false;
    switch (a.type_) {
      case Type::Null:
        return true;
      case Type::Bool:
        return a.b_ == b.b_;
      case Type::String:
        return a.s_ == b.s_;
      case Type::Array:
        return *a.a_ == *b.a_;
      case Type::Object:
        return *a.o_ == *b.o_;
      default:
        return false;
    }
  }
  friend bool operator!=(const Json& a, const Json& b) { return !(a == b); }

  static void appendString(std::string& out, std::string_view s) {
    out += '"';
    for (unsigned char c : s) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
          } else {
            out += static_cast<char>(c);
          }
      }
    }
    out += '"';
  }
  static void appendDouble(std::string& out, double d) {
    if (!std::isfinite(d)) {
      out += "null";
      return;
    }
    if (std::floor(d) == d && std::fabs(d) < 1e15) {
      out += std::to_string(static_cast<int64_t>(d));
      return;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", d);
    // Prefer the shortest text that reads back exactly.
    for (int prec = 6; prec < 17; ++prec) {
      char shorter[32];
      std::snprintf(shorter, sizeof shorter, "%.*g", prec, d);
      if (std::strtod(shorter, nullptr) == d) {
        out += shorter;
        return;
      }
    }
    out += buf;
  }

 private:
  static const Json& nullNode() noexcept {
    static const Json kNull;
    return kNull;
  }
  // Copy-on-write: containers are shared between copies until one is written.
  Array& mutableArray() {
    if (a_.use_count() > 1) a_ = std::make_shared<Array>(*a_);
    return *a_;
  }
  Object& mutableObject() {
    if (o_.use_count() > 1) o_ = std::make_shared<Object>(*o_);
    return *o_;
  }
  void copyFrom(const Json& o) {
    type_ = o.type_;
    b_ = o.b_;
    i_ = o.i_;
    d_ = o.d_;
    s_ = o.s_;
    a_ = o.a_;
    o_ = o.o_;
  }

  struct Parser {
    std::string_view t;
    size_t pos;

    [[noreturn]] void fail(const char* what) const {
      throw JsonError(std::string("invalid JSON at offset ") + std::to_string(pos) + ": " + what);
    }
    void skipWs() {
      while (pos < t.size() &&
             (t[pos] == ' ' || t[pos] == '\n' || t[pos] == '\r' || t[pos] == '\t'))
        ++pos;
    }
    bool literal(std::string_view word) {
      if (t.substr(pos, word.size()) == word) {
        pos += word.size();
        return true;
      }
      return false;
    }
    Json value(int depth) {
      if (depth > kMaxDepth) fail("nesting too deep");
      if (pos >= t.size()) fail("unexpected end of input");
      char c = t[pos];
      if (c == '{') return objectValue(depth);
      if (c == '[') return arrayValue(depth);
      if (c == '"') return Json(stringValue());
      if (c == 't' && literal("true")) return Json(true);
      if (c == 'f' && literal("false")) return Json(false);
      if (c == 'n' && literal("null")) return Json();
      if (c == '-' || (c >= '0' && c <= '9')) return numberValue();
      fail("unexpected character");
    }
    Json objectValue(int depth) {
      ++pos;  // '{'
      Object obj;
      skipWs();
      if (pos < t.size() && t[pos] == '}') {
        ++pos;
        return Json(std::move(obj));
      }
      for (;;) {
        skipWs();
        if (pos >= t.size() || t[pos] != '"') fail("expected a string key");
        std::string key = stringValue();
        skipWs();
        if (pos >= t.size() || t[pos] != ':') fail("expected ':'");
        ++pos;
        skipWs();
        obj.emplace_back(std::move(key), value(depth + 1));
        skipWs();
        if (pos < t.size() && t[pos] == ',') {
          ++pos;
          continue;
        }
        if (pos < t.size() && t[pos] == '}') {
          ++pos;
          return Json(std::move(obj));
        }
        fail("expected ',' or '}'");
      }
    }
    Json arrayValue(int depth) {
      ++pos;  // '['
      Array arr;
      skipWs();
      if (pos < t.size() && t[pos] == ']') {
        ++pos;
        return Json(std::move(arr));
      }
      for (;;) {
        skipWs();
        arr.push_back(value(depth + 1));
        skipWs();
        if (pos < t.size() && t[pos] == ',') {
          ++pos;
          continue;
        }
        if (pos < t.size() && t[pos] == ']') {
          ++pos;
          return Json(std::move(arr));
        }
        fail("expected ',' or ']'");
      }
    }
    static void appendUtf8(std::string& out, uint32_t cp) {
      if (cp < 0x80) {
        out += static_cast<char>(cp);
      } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      }
    }
    uint32_t hex4() {
      if (pos + 4 > t.size()) fail("truncated \\u escape");
      uint32_t v = 0;
      for (int i = 0; i < 4; ++i) {
        char h = t[pos++];
        v <<= 4;
        if (h >= '0' && h <= '9')
          v |= static_cast<uint32_t>(h - '0');
        else if (h >= 'a' && h <= 'f')
          v |= static_cast<uint32_t>(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
          v |= static_cast<uint32_t>(h - 'A' + 10);
        else
          fail("bad hex digit in \\u escape");
      }
      return v;
    }
    std::string stringValue() {
      ++pos;  // '"'
      std::string out;
      for (;;) {
        if (pos >= t.size()) fail("unterminated string");
        char c = t[pos++];
        if (c == '"') return out;
        if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
        if (c != '\\') {
          out += c;
          continue;
        }
        if (pos >= t.size()) fail("unterminated escape");
        char e = t[pos++];
        switch (e) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            uint32_t cp = hex4();
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (pos + 2 <= t.size() && t[pos] == '\\' && t[pos + 1] == 'u') {
                pos += 2;
                uint32_t lo = hex4();
                if (lo < 0xDC00 || lo > 0xDFFF) fail("bad surrogate pair");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
              } else {
                fail("lone surrogate");
              }
            }
            appendUtf8(out, cp);
            break;
          }
          default:
            fail("bad escape");
        }
      }
    }
    Json numberValue() {
      size_t start = pos;
      bool integral = true;
      if (t[pos] == '-') ++pos;
      if (pos >= t.size() || t[pos] < '0' || t[pos] > '9') fail("bad number");
      if (t[pos] == '0') {
        ++pos;
      } else {
        while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') ++pos;
      }
      if (pos < t.size() && t[pos] == '.') {
        integral = false;
        ++pos;
        if (pos >= t.size() || t[pos] < '0' || t[pos] > '9') fail("bad fraction");
        while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') ++pos;
      }
      if (pos < t.size() && (t[pos] == 'e' || t[pos] == 'E')) {
        integral = false;
        ++pos;
        if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) ++pos;
        if (pos >= t.size() || t[pos] < '0' || t[pos] > '9') fail("bad exponent");
        while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') ++pos;
      }
      std::string num(t.substr(start, pos - start));
      if (integral && num.size() < 19) return Json(static_cast<long long>(std::stoll(num)));
      return Json(std::strtod(num.c_str(), nullptr));
    }
  };

  Type type_ = Type::Null;
  bool b_ = false;
  int64_t i_ = 0;
  double d_ = 0;
  std::string s_;
  std::shared_ptr<Array> a_;
  std::shared_ptr<Object> o_;
};

}  // namespace blockbuster

#endif  // BLOCKBUSTER_JSON_H_
