#include "http/request_flow.h"

#include <Poco/Base64Encoder.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/SHA1Engine.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <sstream>

#include "util/log.h"

namespace bb::http_detail {
namespace {

// Whether the comma-separated list `value` has `token` as one of its elements (compared without
// case), as RFC 9110 reads Connection and Upgrade: "notupgrade" is not "upgrade".
bool hasToken(const std::string& value, const char* token) {
  const size_t n = std::strlen(token);
  size_t i = 0;
  while (i <= value.size()) {
    size_t end = value.find(',', i);
    if (end == std::string::npos) end = value.size();
    size_t a = i, b = end;
    while (a < b && (value[a] == ' ' || value[a] == '\t')) ++a;
    while (b > a && (value[b - 1] == ' ' || value[b - 1] == '\t')) --b;
    if (b - a == n) {
      bool same = true;
      for (size_t k = 0; k < n && same; ++k)
        same = std::tolower(static_cast<unsigned char>(value[a + k])) == token[k];
      if (same) return true;
    }
    i = end + 1;
  }
  return false;
}

// RFC 6455 4.1: the key is 16 random bytes in base64: 22 characters, the last with its low four
// bits zero, then "==".
bool isWebSocketKey(const std::string& key) {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < 22; ++i) {
    const size_t v = kAlphabet.find(key[i]);
    if (v == std::string::npos || (i == 21 && (v & 0x0f) != 0)) return false;
  }
  return true;
}

}  // namespace

RequestFlow::RequestFlow(const ServerOptions& options, HttpServer::Handler handler,
                         HttpServer::Observer observer)
    : options_(options), handler_(std::move(handler)), observer_(std::move(observer)) {}

const Authenticator& RequestFlow::authenticator(const std::string& path) const {
  for (const auto& pa : options_.path_auth)
    if (pa.first == path) return pa.second;
  return options_.auth;
}

// The limits of the options a request breaks, as the answer to send; nullopt if none.
std::optional<HttpResponse> RequestFlow::checkLimits(const RequestHead& head) const {
  if (head.uri().size() > options_.max_uri_bytes)
    return HttpResponse::error(
        414, "uri_too_long",
        "the request target is longer than " + std::to_string(options_.max_uri_bytes) + " bytes");
  size_t fields = 0, bytes = 0;
  head.measure(fields, bytes);
  if (fields > options_.max_header_fields || bytes > options_.max_header_bytes)
    return HttpResponse::error(
        431, "headers_too_large",
        "the request has more than " + std::to_string(options_.max_header_fields) +
            " header fields or " + std::to_string(options_.max_header_bytes) + " header bytes");
  if (head.chunked() || head.contentLength() > options_.max_body_bytes)
    return HttpResponse::error(413, "body_too_large",
                               "this API takes no request body over " +
                                   std::to_string(options_.max_body_bytes) + " bytes");
  return std::nullopt;
}

RequestFlow::Admission RequestFlow::admit(const RequestHead& head) const {
  Admission a;
  HttpRequest& req = a.request;
  req.method = head.method();
  const std::string& uri = head.uri();
  size_t q = uri.find('?');
  a.raw_path = uri.substr(0, q);
  if (q != std::string::npos) req.raw_query = uri.substr(q + 1);
  req.token_param = takeTokenParameter(req.raw_query);
  // A path that does not decode is answered 400 by the router as an unknown route.
  if (!percentDecode(a.raw_path, req.path, false)) req.path = a.raw_path;
  req.origin = head.get("Origin");
  req.if_none_match = head.get("If-None-Match");
  req.authorization = head.get("Authorization");
  req.ws_protocols = head.get("Sec-WebSocket-Protocol");
  req.ws_extensions = head.get("Sec-WebSocket-Extensions");
  a.refusal = checkLimits(head);
  a.close = a.refusal.has_value();
  if (!a.refusal && req.method != "OPTIONS" && !authenticator(req.path).check(req))
    a.refusal = authenticator(req.path).challenge();
  if (a.refusal && options_.decorate_refusal) options_.decorate_refusal(req, *a.refusal);
  return a;
}

HttpResponse RequestFlow::run(HttpRequest&& request) const {
  try {
    return handler_(std::move(request));
  } catch (const std::exception& e) {
    // A handler bug must not take the connection down with a half-written answer.
    logError("http", std::string("handler failed: ") + e.what());
    return HttpResponse::error(500, "internal_error", "the agent failed to build this answer");
  }
}

HttpResponse RequestFlow::handshake(UpgradeHandler& upgrade, const RequestHead& head,
                                    const HttpRequest& request) const {
  if (!hasToken(head.get("Upgrade"), "websocket") || !hasToken(head.get("Connection"), "upgrade")) {
    HttpResponse r = HttpResponse::error(426, "upgrade_required",
                                         "this path serves a WebSocket stream only; connect with "
                                         "a WebSocket client (Upgrade: websocket)");
    r.headers.emplace_back("Upgrade", "websocket");
    return r;
  }
  std::optional<HttpResponse> refusal;
  try {
    refusal = upgrade.checkUpgrade(request);
  } catch (const std::exception& e) {
    logError("http", std::string("WebSocket admission failed: ") + e.what());
    refusal = HttpResponse::error(500, "internal_error", "the agent failed to admit the client");
  }
  if (refusal) return std::move(*refusal);
  // RFC 6455 4.1: a GET of HTTP/1.1 (or later), with a well-formed key.
  if (head.method() != "GET" || head.version() != "HTTP/1.1")
    return HttpResponse::error(400, "bad_handshake",
                               "invalid WebSocket handshake; it must be a GET request of "
                               "HTTP/1.1");
  const std::string key = head.get("Sec-WebSocket-Key");
  if (!isWebSocketKey(key) || head.get("Sec-WebSocket-Version") != "13")
    return HttpResponse::error(400, "bad_handshake",
                               "invalid WebSocket handshake; send Sec-WebSocket-Key (16 bytes "
                               "in base64) and Sec-WebSocket-Version: 13");
  HttpResponse r;
  r.status = 101;
  r.content_type.clear();
  r.headers = {{"Upgrade", "websocket"},
               {"Connection", "Upgrade"},
               {"Sec-WebSocket-Accept", webSocketAccept(key)}};
  // A browser that sent its token as a subprotocol needs one protocol chosen back, or it
  // drops the connection; never the token itself (docs/security.md).
  std::string protocols = "," + request.ws_protocols + ",";
  protocols.erase(std::remove(protocols.begin(), protocols.end(), ' '), protocols.end());
  if (protocols.find(",blockbuster,") != std::string::npos)
    r.headers.emplace_back("Sec-WebSocket-Protocol", "blockbuster");
  upgrade.acceptUpgrade(request, r);
  return r;
}

void RequestFlow::observe(const std::string& method, const std::string& raw_path,
                          const HttpResponse& response, Clock::time_point started) const {
  if (!observer_) return;
  HttpRequest seen;
  seen.method = method;
  seen.path = raw_path;
  observer_(seen, response, std::chrono::duration<double>(Clock::now() - started).count());
}

const std::string& reasonPhrase(int status) {
  return Poco::Net::HTTPResponse::getReasonForStatus(
      static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
}

const std::string& busyAnswer() {
  static const std::string kBusy =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
      "Connection: close\r\nRetry-After: 1\r\nContent-Length: 104\r\n\r\n"
      "{\"error\":{\"code\":\"busy\",\"message\":\"too many connections to this agent; "
      "retry later or raise its limit\"}}";
  return kBusy;
}

}  // namespace bb::http_detail

namespace bb {

std::string webSocketAccept(const std::string& key) {
  Poco::SHA1Engine sha1;
  sha1.update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
  const Poco::DigestEngine::Digest& digest = sha1.digest();
  std::ostringstream accept;
  Poco::Base64Encoder b64(accept);
  b64.write(reinterpret_cast<const char*>(digest.data()),
            static_cast<std::streamsize>(digest.size()));
  b64.close();
  return accept.str();
}

}  // namespace bb
