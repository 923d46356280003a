// The HTTP/1.1 request head as the reactor reads it (RFC 9112): where it ends in the bytes
// received, and its request line and fields. One parser for every port, plain or TLS.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bb::net {

class RequestHead {
 public:
  const std::string& method() const { return method_; }
  const std::string& uri() const { return target_; }
  /// "HTTP/1.1" or "HTTP/1.0".
  const std::string& version() const { return version_; }
  /// The (first) value of header `name`, compared without case; "" when absent.
  std::string get(const char* name) const;
  /// How many header fields, and the bytes of their names and values together.
  void measure(size_t& fields, size_t& bytes) const;
  /// A body whose length is not given up front (a Transfer-Encoding other than identity).
  bool chunked() const { return chunked_; }
  /// Content-Length; -1 when absent.
  long long contentLength() const { return content_length_; }
  /// Whether the client lets the connection be kept: Poco's rule (HTTPMessage::getKeepAlive),
  /// so that clients see what they always saw: any Connection value but "close" keeps it, and
  /// without one HTTP/1.1 keeps it, HTTP/1.0 does not.
  bool keepAlive() const;
  bool expectsContinue() const;

  /// Parses [data, data + size), a head that ends with its blank line. "" on success, else what
  /// is wrong with it (answered 400).
  std::string parse(const char* data, size_t size);

 private:
  std::string method_, target_, version_;
  std::vector<std::pair<std::string, std::string>> fields_;
  bool chunked_ = false;
  long long content_length_ = -1;
};

/// Line ends and blanks between requests belong to no request (RFC 9112 2.2).
inline bool isLineSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/// The end of the head that starts at `from` in `in` (just past its blank line), or 0 if it has
/// not come yet; the search starts at `start` (where an earlier one stopped).
size_t findHeadEnd(std::string_view in, size_t from, size_t start);

/// How a loop frames the first request of `bytes`: for the fuzz target and tests.
struct HeadFraming {
  bool complete = false;  ///< the head's blank line has come
  size_t head_bytes = 0;  ///< through the blank line (line ends before the request included)
  std::string error;      ///< why the head is answered 400 and the connection closed; "" if not
  long long content_length = -1;
  bool chunked = false;  ///< a Transfer-Encoding other than identity (refused with 413)
};
HeadFraming frameRequestHead(std::string_view bytes);

}  // namespace bb::net
