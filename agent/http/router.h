// HTTP routing independent of the server library: a request in, a response out. The same
// Router serves the main port; tests and fuzzers drive it without sockets.
//
// It answers, for every route: HEAD (GET without the body), OPTIONS (CORS preflight), 405 with
// `Allow` for other methods, 404 for unknown paths, and 400 for a malformed query string; every
// error body is {"error":{"code","message"}}. CORS follows the config: "*" by default; with an
// allow-list, the matching Origin is echoed with `Vary: Origin`. Credentials are never allowed.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bb {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  ///< "GET", "HEAD", ...
  std::string path;    ///< decoded path, without the query
  std::string raw_query;
  std::string origin;         ///< the Origin header, "" if none
  std::string if_none_match;  ///< the If-None-Match header, "" if none
  /// Credentials, read by the server for its Authenticator. Secrets: never log or echo them.
  std::string authorization;  ///< the Authorization header, "" if none
  std::string token_param;    ///< the `token` query parameter (taken out of raw_query)
  std::string ws_protocols;   ///< the Sec-WebSocket-Protocol header, "" if none
  std::string ws_extensions;  ///< the Sec-WebSocket-Extensions header, "" if none
  QueryParams query;          ///< filled by Router::handle
  /// False on an HTTP event loop: a handler that would have to block (read a file, a database)
  /// answers HttpResponse::deferred(request) instead, and the loop hands the request to its
  /// bounded worker pool, where it runs again with may_block true (ServerOptions::offload).
  bool may_block = true;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  bool head = false;  ///< answer to HEAD: send headers (with the body's length) but no body
  /// Set by deferred(): the request to run again off the event loop (never sent as it is).
  std::shared_ptr<const HttpRequest> retry;

  static HttpResponse json(std::string body, int status = 200);
  /// {"error":{"code":code,"message":message}}
  static HttpResponse error(int status, const std::string& code, const std::string& message);
  /// "Run `request` again where it may block" (only when request.may_block is false). A 503 if
  /// it ever reached a client: a server without a worker pool cannot run it again.
  static HttpResponse deferred(const HttpRequest& request);
};

/// Parses "a=1&b=x%20y". Returns "" on success, else a message naming the bad part.
std::string parseQuery(const std::string& raw, QueryParams& out);
/// Percent-decodes (and '+' as space when `plus_is_space`); false on a bad escape.
bool percentDecode(const std::string& in, std::string& out, bool plus_is_space);

/// What is wrong with an integer query parameter (intParam).
enum class IntParamProblem { None, Repeated, NotAnInteger, OutOfRange };

/// Reads an integer query parameter. Returns "" and sets `value` (to `fallback` when absent), or
/// an error message naming the parameter (and, when OutOfRange, what is allowed); `problem`,
/// when given, says which.
std::string intParam(const QueryParams& q, const std::string& name, long long fallback,
                     long long min, long long max, long long& value,
                     IntParamProblem* problem = nullptr);

class Router {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  /// Handles paths no exact route matched (e.g. plugin routes); nullopt = 404.
  using Fallback = std::function<std::optional<HttpResponse>(const HttpRequest&)>;

  explicit Router(std::vector<std::string> cors_origins = {"*"});

  /// Registers a GET (and HEAD) route. `params` lists the query parameters it accepts; any other
  /// is ignored (dropped from `query` before the handler sees it).
  void get(const std::string& path, Handler handler, std::vector<std::string> params = {});
  void setFallback(Fallback fallback);

  HttpResponse handle(HttpRequest request) const;

  /// The route label for metrics: the registered path, "fallback", or "unmatched".
  std::string routeLabel(const std::string& path) const;
  /// Adds the CORS headers this router would put on an answer to `req` (e.g. on a 401 the
  /// server sends before routing, so that a page can read it).
  void addCors(const HttpRequest& req, HttpResponse& resp) const;
  std::vector<std::string> paths() const;

 private:
  struct Route {
    Handler handler;
    std::vector<std::string> params;
  };

  std::map<std::string, Route> routes_;
  Fallback fallback_;
  std::vector<std::string> cors_origins_;
  bool cors_any_ = false;
};

}  // namespace bb
