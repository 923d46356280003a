// What HttpServer does with a request once its head is parsed, whichever engine read it: the
// request's fields, the limits, the credentials, the handler (a throw is a 500), the WebSocket
// handshake checks and the observer. Private to bb_http and the WebSocket loop's own TLS
// listeners (ws_server.cc): one copy for the event loop of plain listeners (event_server.cc),
// Poco's HTTPServer for TLS ones (server.cc) and wss:// upgrades, so that a request gets the same
// answer on any kind of port.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "http/server.h"

namespace Poco::Net {
class HTTPRequest;
}

namespace bb::http_detail {

using Clock = std::chrono::steady_clock;

/// A parsed request head, as each engine's parser holds it.
class RequestHead {
 public:
  virtual ~RequestHead() = default;
  virtual const std::string& method() const = 0;
  virtual const std::string& uri() const = 0;
  /// "HTTP/1.1" or "HTTP/1.0".
  virtual const std::string& version() const = 0;
  /// The (first) value of header `name`, compared without case; "" when absent.
  virtual std::string get(const char* name) const = 0;
  /// How many header fields, and the bytes of their names and values together.
  virtual void measure(size_t& fields, size_t& bytes) const = 0;
  /// A body whose length is not given up front (Transfer-Encoding: chunked).
  virtual bool chunked() const = 0;
  /// Content-Length; -1 when absent.
  virtual long long contentLength() const = 0;
};

/// A head Poco parsed (Poco::Net::HTTPRequest, or the HTTPServerRequest of a TLS listener).
class PocoHead : public RequestHead {
 public:
  explicit PocoHead(const Poco::Net::HTTPRequest& request) : request_(request) {}
  const std::string& method() const override;
  const std::string& uri() const override;
  const std::string& version() const override;
  std::string get(const char* name) const override;
  void measure(size_t& fields, size_t& bytes) const override;
  bool chunked() const override;
  long long contentLength() const override;

 private:
  const Poco::Net::HTTPRequest& request_;
};

class RequestFlow {
 public:
  RequestFlow(const ServerOptions& options, HttpServer::Handler handler,
              HttpServer::Observer observer);

  struct Admission {
    HttpRequest request;
    std::string raw_path;  ///< the path as sent (not decoded), for the observer
    /// The answer decided before any handler runs: a broken limit or a 401 (decorated).
    std::optional<HttpResponse> refusal;
    /// A broken limit: the body (if any) is left unread, so the connection cannot be reused.
    bool close = false;
  };
  /// Builds the request from `head` and checks the limits, then the credentials (OPTIONS, the
  /// CORS preflight, is never authenticated).
  Admission admit(const RequestHead& head) const;

  /// The Handler's answer; a throw is logged and answered 500.
  HttpResponse run(HttpRequest&& request) const;

  /// An upgrade request to a path of `upgrade`: the 101 to send (with Upgrade, Connection,
  /// Sec-WebSocket-Accept and the chosen subprotocol among its headers, no body), or the answer
  /// to send instead (426 without the upgrade headers, the handler's refusal, 400 for a bad
  /// Sec-WebSocket-Key or Version).
  HttpResponse handshake(UpgradeHandler& upgrade, const RequestHead& head,
                         const HttpRequest& request) const;

  /// Reports a served request to the Observer, if any, with the seconds since `started`.
  void observe(const std::string& method, const std::string& raw_path, const HttpResponse& response,
               Clock::time_point started) const;

  const ServerOptions& options() const { return options_; }

 private:
  const Authenticator& authenticator(const std::string& path) const;
  std::optional<HttpResponse> checkLimits(const RequestHead& head) const;

  const ServerOptions& options_;
  HttpServer::Handler handler_;
  HttpServer::Observer observer_;
};

/// The reason phrase of an HTTP status ("Not Found"), as Poco writes it.
const std::string& reasonPhrase(int status);

/// What a listener answers over its connection cap (and then closes): 503, Retry-After: 1.
const std::string& busyAnswer();

}  // namespace bb::http_detail
