#include "http/router.h"

#include <blockbuster/json.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace bb {

HttpResponse HttpResponse::json(std::string body, int status) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::error(int status, const std::string& code, const std::string& message) {
  std::string body = "{\"error\":{\"code\":";
  blockbuster::Json::appendString(body, code);
  body += ",\"message\":";
  blockbuster::Json::appendString(body, message);
  body += "}}";
  return json(std::move(body), status);
}

HttpResponse HttpResponse::deferred(const HttpRequest& request) {
  HttpResponse r = error(503, "busy", "this answer needs a worker and none can take it; retry");
  r.headers.emplace_back("Retry-After", "1");
  auto again = std::make_shared<HttpRequest>(request);
  again->may_block = true;
  again->query.clear();  // Router::handle parses raw_query again
  r.retry = std::move(again);
  return r;
}

static int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percentDecode(const std::string& in, std::string& out, bool plus_is_space) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = hexValue(in[i + 1]), lo = hexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return true;
}

std::string parseQuery(const std::string& raw, QueryParams& out) {
  out.clear();
  if (raw.size() > 4096) return "the query string is longer than 4096 bytes";
  size_t start = 0;
  while (start <= raw.size()) {
    size_t end = raw.find('&', start);
    if (end == std::string::npos) end = raw.size();
    std::string part = raw.substr(start, end - start);
    if (!part.empty()) {
      if (out.size() >= 32) return "more than 32 query parameters";
      size_t eq = part.find('=');
      std::string key, value;
      if (!percentDecode(part.substr(0, eq), key, true))
        return "query parameter name '" + part.substr(0, eq) + "' has a bad %-escape";
      if (eq != std::string::npos && !percentDecode(part.substr(eq + 1), value, true))
        return "query parameter '" + key + "' has a bad %-escape in its value";
      if (key.empty()) return "a query parameter has an empty name";
      out.emplace_back(std::move(key), std::move(value));
    }
    start = end + 1;
  }
  return "";
}

std::string intParam(const QueryParams& q, const std::string& name, long long fallback,
                     long long min, long long max, long long& value, IntParamProblem* problem) {
  const auto fail = [&](IntParamProblem kind, std::string message) {
    if (problem) *problem = kind;
    return message;
  };
  if (problem) *problem = IntParamProblem::None;
  value = fallback;
  const std::string* text = nullptr;
  for (const auto& kv : q) {
    if (kv.first != name) continue;
    if (text) {
      return fail(IntParamProblem::Repeated,
                  "query parameter '" + name + "' is given more than once; give it once");
    }
    text = &kv.second;
  }
  if (!text) return "";
  auto range = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (text->empty() || text->size() > 19 ||
      text->find_first_not_of("-0123456789") != std::string::npos)
    return fail(IntParamProblem::NotAnInteger,
                "query parameter '" + name + "' must be " + range + ", got '" + *text + "'");
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text->c_str(), &end, 10);
  if (errno != 0 || *end != '\0')
    return fail(IntParamProblem::NotAnInteger,
                "query parameter '" + name + "' must be " + range + ", got '" + *text + "'");
  if (v < min || v > max)
    return fail(IntParamProblem::OutOfRange,
                "query parameter '" + name + "' is out of range: " + *text + "; allowed: " + range);
  value = v;
  return "";
}

Router::Router(std::vector<std::string> cors_origins) : cors_origins_(std::move(cors_origins)) {
  cors_any_ = std::find(cors_origins_.begin(), cors_origins_.end(), "*") != cors_origins_.end();
}

void Router::get(const std::string& path, Handler handler, std::vector<std::string> params) {
  routes_[path] = Route{std::move(handler), std::move(params)};
}

void Router::setFallback(Fallback fallback) { fallback_ = std::move(fallback); }

std::vector<std::string> Router::paths() const {
  std::vector<std::string> out;
  for (const auto& kv : routes_) out.push_back(kv.first);
  return out;
}

std::string Router::routeLabel(const std::string& path) const {
  if (routes_.count(path)) return path;
  return fallback_ ? "fallback" : "unmatched";
}

void Router::addCors(const HttpRequest& req, HttpResponse& resp) const {
  if (cors_any_) {
    resp.headers.emplace_back("Access-Control-Allow-Origin", "*");
    return;
  }
  resp.headers.emplace_back("Vary", "Origin");
  if (!req.origin.empty() &&
      std::find(cors_origins_.begin(), cors_origins_.end(), req.origin) != cors_origins_.end())
    resp.headers.emplace_back("Access-Control-Allow-Origin", req.origin);
}

HttpResponse Router::handle(HttpRequest req) const {
  HttpResponse resp;
  const bool head = req.method == "HEAD";
  const bool options = req.method == "OPTIONS";
  auto it = routes_.find(req.path);
  std::string query_error = parseQuery(req.raw_query, req.query);

  auto exists = [&] {
    if (it != routes_.end()) return true;
    if (!fallback_) return false;
    HttpRequest probe = req;
    probe.method = "GET";
    auto r = fallback_(probe);
    return r && r->status != 404;
  };
  if (!options && req.method != "GET" && !head) {
    if (exists()) {
      resp = HttpResponse::error(405, "method_not_allowed",
                                 "method " + req.method + " is not allowed on " + req.path +
                                     "; allowed: GET, HEAD, OPTIONS");
      resp.headers.emplace_back("Allow", "GET, HEAD, OPTIONS");
    } else {
      resp = HttpResponse::error(404, "not_found", "no such endpoint: " + req.path);
    }
  } else if (options) {
    resp.status = 204;
    resp.content_type.clear();
    resp.headers.emplace_back("Allow", "GET, HEAD, OPTIONS");
    resp.headers.emplace_back("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    resp.headers.emplace_back("Access-Control-Allow-Headers", "Content-Type, Authorization");
    resp.headers.emplace_back("Access-Control-Max-Age", "600");
  } else if (!query_error.empty()) {
    resp = HttpResponse::error(400, "bad_query", query_error);
  } else if (it != routes_.end()) {
    // Unknown parameters (a cache-buster `_=123`, `verbose=1`) are ignored, as the guide's
    // server does: the handler sees only the ones the route accepts, whose bad values it refuses.
    const auto& accepted = it->second.params;
    req.query.erase(std::remove_if(req.query.begin(), req.query.end(),
                                   [&](const auto& kv) {
                                     return std::find(accepted.begin(), accepted.end(), kv.first) ==
                                            accepted.end();
                                   }),
                    req.query.end());
    resp = it->second.handler(req);
  } else {
    std::optional<HttpResponse> r;
    if (fallback_) r = fallback_(req);
    if (r)
      resp = std::move(*r);
    else
      resp = HttpResponse::error(404, "not_found", "no such endpoint: " + req.path);
  }
  addCors(req, resp);
  resp.head = head;  // the server sends the GET's headers and Content-Length, no body
  return resp;
}

}  // namespace bb
