#include "net/http_head.h"

#include <cctype>
#include <cstring>

#include "net/limits.h"

namespace bb::net {
namespace {

bool iequals(const std::string& a, const char* b) {
  const size_t n = std::strlen(b);
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

bool isBlank(char c) { return c == ' ' || c == '\t'; }

}  // namespace

std::string RequestHead::get(const char* name) const {
  for (const auto& f : fields_)
    if (iequals(f.first, name)) return f.second;
  return "";
}

void RequestHead::measure(size_t& fields, size_t& bytes) const {
  fields += fields_.size();
  for (const auto& f : fields_) bytes += f.first.size() + f.second.size();
}

bool RequestHead::keepAlive() const {
  std::string connection = get("Connection");
  if (!connection.empty()) return !iequals(connection, "close");
  return version_ == "HTTP/1.1";
}

bool RequestHead::expectsContinue() const { return iequals(get("Expect"), "100-continue"); }

std::string RequestHead::parse(const char* data, size_t size) {
  const char* const end = data + size;
  const char* p = data;
  const char* eol = static_cast<const char*>(std::memchr(p, '\n', size));
  const char* le = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
  auto token = [&le](const char*& q, size_t max, std::string& out) {
    while (q < le && isBlank(*q)) ++q;
    const char* from = q;
    while (q < le && !isBlank(*q)) ++q;
    if (q == from || static_cast<size_t>(q - from) > max) return false;
    out.assign(from, q);
    return true;
  };
  // RFC 9112: a CR that does not end the line, or a NUL, is refused, here as in the fields.
  if (std::memchr(p, '\r', static_cast<size_t>(le - p)) ||
      std::memchr(p, '\0', static_cast<size_t>(le - p)))
    return "a bare CR or a NUL in the request line";
  const char* q = p;
  if (!token(q, kMaxMethodBytes, method_)) return "no method, or one over 32 bytes";
  if (!token(q, kMaxTargetBytes, target_)) return "no request target, or one over 16384 bytes";
  if (!token(q, kMaxVersionBytes, version_) || (version_ != "HTTP/1.1" && version_ != "HTTP/1.0"))
    return "the version must be HTTP/1.1 or HTTP/1.0";
  for (p = eol + 1; p < end; p = eol + 1) {
    eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    le = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
    if (le == p) break;  // the blank line
    // RFC 9112: a CR that does not end the line, or a NUL, is refused (a recipient that
    // reads it as a line end would see other fields than we do).
    if (std::memchr(p, '\r', static_cast<size_t>(le - p)) ||
        std::memchr(p, '\0', static_cast<size_t>(le - p)))
      return "a bare CR or a NUL in a header line";
    if (isBlank(*p) && !fields_.empty()) {
      // A folded line continues the previous value.
      std::string& value = fields_.back().second;
      value.append(p, le);
      while (!value.empty() && isBlank(value.back())) value.pop_back();
      if (value.size() > kMaxValueBytes) return "a header value is over 8192 bytes";
      continue;
    }
    const char* colon = static_cast<const char*>(std::memchr(p, ':', static_cast<size_t>(le - p)));
    const size_t name_bytes = static_cast<size_t>((colon ? colon : le) - p);
    if (name_bytes > kMaxNameBytes) return "a header name is over 256 bytes";
    if (!colon) continue;  // a line that is no field: ignored, as Poco does
    if (colon == p) return "a header field without a name";
    // RFC 9112 5.1: no whitespace between the name and the colon (nor in the name).
    for (const char* n = p; n < colon; ++n)
      if (isBlank(*n)) return "whitespace in a header name or before its colon";
    if (fields_.size() == kMaxFields) return "more than 100 header fields";
    const char* v = colon + 1;
    while (v < le && isBlank(*v)) ++v;
    if (static_cast<size_t>(le - v) > kMaxValueBytes) return "a header value is over 8192 bytes";
    const char* ve = le;
    while (ve > v && isBlank(ve[-1])) --ve;
    fields_.emplace_back(std::string(p, colon), std::string(v, ve));
  }
  for (const auto& f : fields_) {
    if (iequals(f.first, "Content-Length")) {
      const std::string& v = f.second;
      if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
        return "bad Content-Length";
      // RFC 9112 6.3: Content-Length fields that disagree make the body's end unknown (the
      // rest could be read as another request): refused, not the first one believed.
      const long long length = std::stoll(v);
      if (content_length_ >= 0 && length != content_length_)
        return "Content-Length fields that disagree";
      content_length_ = length;
    } else if (iequals(f.first, "Transfer-Encoding") && !iequals(f.second, "identity")) {
      // Any coding makes the body's length unknown up front: refused (413) like chunked.
      chunked_ = true;
    }
  }
  return "";
}

size_t findHeadEnd(std::string_view in, size_t from, size_t start) {
  size_t i = start;
  while ((i = in.find('\n', i)) != std::string_view::npos) {
    if (i > from && in[i - 1] == '\n') return i + 1;
    if (i > from + 1 && in[i - 1] == '\r' && in[i - 2] == '\n') return i + 1;
    ++i;
  }
  return 0;
}

HeadFraming frameRequestHead(std::string_view bytes) {
  HeadFraming f;
  size_t from = 0;
  while (from < bytes.size() && isLineSpace(bytes[from])) ++from;
  const size_t end = findHeadEnd(bytes, from, from);
  if (end == 0) return f;
  f.complete = true;
  f.head_bytes = end;
  RequestHead head;
  f.error = head.parse(bytes.data() + from, end - from);
  if (f.error.empty()) {
    f.content_length = head.contentLength();
    f.chunked = head.chunked();
  }
  return f;
}

}  // namespace bb::net
