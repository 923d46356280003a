// What HttpServer does with a request once its head is parsed: the request's fields, the limits,
// the credentials, the handler (a throw is a 500), the WebSocket handshake checks and the
// observer. The one policy point of every request, whatever the port and the transport (plain
// or TLS), so that a request gets the same answer on any kind of port. Private to bb_http.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "http/server.h"
#include "net/http_head.h"

namespace bb::http_detail {

using Clock = std::chrono::steady_clock;

using RequestHead = net::RequestHead;

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

/// The reason phrase of an HTTP status ("Not Found"), as Poco names it.
const std::string& reasonPhrase(int status);

/// What a listener answers over its connection cap (and then closes): 503, Retry-After: 1.
const std::string& busyAnswer();

}  // namespace bb::http_detail
