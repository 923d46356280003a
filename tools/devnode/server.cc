#include "server.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/URI.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <istream>

#include "views.h"

namespace devnode {

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxBodyBytes = 1 << 20;  // the real node's request limit
constexpr size_t kMaxCacheEntries = 512;

std::mutex g_log_mu;

void logLine(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_log_mu);
  std::fprintf(stderr, "bb-devnode: %s\n", line.c_str());
  std::fflush(stderr);
}

std::string errorEnvelope(const std::string& id_json, int code, const std::string& message) {
  std::string out = "{\"error\":{\"code\":" + std::to_string(code) + ",\"message\":";
  Json::appendString(out, message);
  out += "},\"id\":" + id_json + ",\"jsonrpc\":\"2.0\"}";
  return out;
}

std::string resultEnvelope(const std::string& id_json, const std::string& result_text) {
  return "{\"id\":" + id_json + ",\"jsonrpc\":\"2.0\",\"result\":" + result_text + "}";
}

bool startsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

bool isAdminMethod(const std::string& m) { return m == "start_mining" || m == "stop_mining"; }

// Storage reads that open the real node's storage pipeline (node/src/rpc/storage.rs:
// StoragePipeline::open starts a storage-repair-loop thread that never ends).
bool opensPipeline(const std::string& m) {
  return m == "storage.discover_providers" || m == "storage.manifests" ||
         m == "storage_provider_profiles" || m == "storage.audit" ||
         m == "storage.repair_history" || m == "storage.repair_run" || m == "storage.repair_chunk";
}

// Methods of the theblock profile that refuse a call without params, as the real node does.
bool needsParams(const std::string& m) {
  return m == "light.headers" || m == "net.peer_stats_all" || m == "energy.receipts";
}

std::string hostWithoutPort(std::string host) {
  if (!host.empty() && host[0] == '[') {
    auto close = host.find(']');
    host = close == std::string::npos ? host : host.substr(0, close + 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return host;
}

}  // namespace

// ---- Chain ---------------------------------------------------------------------------------

Chain::Chain(const Options& o) {
  const int64_t nominal = o.block_ms > 0 ? o.block_ms : 1000;
  int64_t genesis_ms;
  if (o.genesis_time) {
    genesis_ms = *o.genesis_time * 1000;
  } else {
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    genesis_ms = now_ms - static_cast<int64_t>(o.start_height) * nominal;
  }
  state_.init(o, genesis_ms);
  for (uint64_t i = 0; i < o.start_height; ++i) state_.produceBlock();
  height_ = state_.height;
}

void Chain::advance(uint64_t blocks) {
  for (uint64_t i = 0; i < blocks; ++i) {
    // One block per lock hold, so readers are never stalled behind a long advance.
    std::unique_lock<std::shared_mutex> lock(mu_);
    state_.produceBlock();
    height_ = state_.height;
  }
}

void Chain::reset(const Options& o) {
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  Options fresh = o;
  fresh.start_height = 0;
  std::unique_lock<std::shared_mutex> lock(mu_);
  state_ = ChainState();
  state_.init(fresh, now_ms);
  height_ = state_.height;
}

// ---- RateLimiter ---------------------------------------------------------------------------

RateLimiter::Verdict RateLimiter::check(const std::string& ip) {
  if (rate_ <= 0) return Verdict::kAllowed;
  const auto now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, fresh] = buckets_.try_emplace(ip);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = burst_;
    b.last = now;
  }
  if (now < b.banned_until) return Verdict::kBanned;
  const double elapsed = std::chrono::duration<double>(now - b.last).count();
  b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
  b.last = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return Verdict::kAllowed;
  }
  if (ban_seconds_ > 0) b.banned_until = now + std::chrono::seconds(ban_seconds_);
  return Verdict::kLimited;
}

// ---- request handling ----------------------------------------------------------------------

class RequestHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit RequestHandler(Node& node) : node_(node) {}
  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) override;

 private:
  // What to send for one JSON-RPC call.
  struct Reply {
    int http_status = 200;
    std::string body;
    std::string mode;  // a transport fault to apply instead of / on top of the body
  };

  void handleRpc(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp);
  Reply call(const Json& request, Poco::Net::HTTPServerRequest& req, const Faults& faults,
             uint64_t generation, std::string* method_out);
  void handleControl(const std::string& path, const std::string& query,
                     Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp);
  void send(Poco::Net::HTTPServerResponse& resp, int status, const std::string& body,
            const char* content_type = "application/json");
  void closeWithoutReply(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp);
  void hang(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp,
            const Faults& faults, uint64_t generation);
  void applyMode(const Reply& reply, const Faults& faults, uint64_t generation,
                 Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp);

  Node& node_;
  int status_sent_ = 0;
  std::string method_label_;  // JSON-RPC method(s) of this request, for --verbose
};

class HandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit HandlerFactory(Node& node) : node_(node) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new RequestHandler(node_);
  }

 private:
  Node& node_;
};

void RequestHandler::send(Poco::Net::HTTPServerResponse& resp, int status, const std::string& body,
                          const char* content_type) {
  resp.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
  if (!body.empty()) resp.setContentType(content_type);
  resp.setContentLength(static_cast<std::streamsize>(body.size()));
  status_sent_ = status;
  if (body.empty()) {
    resp.send().flush();
  } else {
    resp.sendBuffer(body.data(), body.size());
  }
}

void RequestHandler::closeWithoutReply(Poco::Net::HTTPServerRequest& req,
                                       Poco::Net::HTTPServerResponse& resp) {
  resp.setKeepAlive(false);
  status_sent_ = 0;
  try {
    static_cast<Poco::Net::HTTPServerRequestImpl&>(req).socket().shutdown();
  } catch (...) {
    // Already closed by the client: nothing left to do.
  }
}

void RequestHandler::hang(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp,
                          const Faults& faults, uint64_t generation) {
  auto& socket = static_cast<Poco::Net::HTTPServerRequestImpl&>(req).socket();
  const auto deadline = Clock::now() + std::chrono::seconds(faults.hang_max_seconds);
  // Hold the connection until the client gives up, the node stops or goes down, or the cap.
  try {
    while (!node_.stopping_ && node_.generation_ == generation && Clock::now() < deadline) {
      if (socket.poll(Poco::Timespan(0, 100000),
                      Poco::Net::Socket::SELECT_READ | Poco::Net::Socket::SELECT_ERROR)) {
        char buf[512];
        if (socket.receiveBytes(buf, sizeof buf) <= 0) break;
      }
    }
  } catch (...) {
    // The client reset the connection: the hang is over.
  }
  closeWithoutReply(req, resp);
}

void RequestHandler::applyMode(const Reply& reply, const Faults& faults, uint64_t generation,
                               Poco::Net::HTTPServerRequest& req,
                               Poco::Net::HTTPServerResponse& resp) {
  const std::string& mode = reply.mode;
  node_.countEvent("fault_" + mode);
  if (mode == "http500") {
    resp.setKeepAlive(false);
    send(resp, 500, "Internal Server Error\n", "text/plain");
  } else if (mode == "garbage") {
    send(resp, 200,
         "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":{\"status\":\"ok\",\"data\":[1,2,"
         "<html><body>502 Bad Gateway</body></html>");
  } else if (mode == "truncated") {
    resp.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_OK);
    resp.setContentType("application/json");
    resp.setContentLength(static_cast<std::streamsize>(reply.body.size()));
    resp.setKeepAlive(false);
    std::ostream& os = resp.send();
    os.write(reply.body.data(), static_cast<std::streamsize>(reply.body.size() / 2));
    os.flush();
    closeWithoutReply(req, resp);
  } else if (mode == "oversized") {
    // A valid reply with the real result, padded with a member clients do not know.
    const std::string& body = reply.body;
    auto pos = body.find(",\"jsonrpc\":\"2.0\"");
    std::string padded;
    const size_t overhead = sizeof(",\"padding\":\"\"") - 1;
    const size_t target = static_cast<size_t>(faults.oversized_bytes);
    const size_t pad = target > body.size() + overhead ? target - body.size() - overhead : 0;
    padded.reserve(body.size() + pad + 32);
    padded.append(body, 0, pos + 16);
    padded += ",\"padding\":\"";
    padded.append(pad, 'x');
    padded += "\"";
    padded.append(body, pos + 16, std::string::npos);
    send(resp, 200, padded);
  } else if (mode == "empty") {
    closeWithoutReply(req, resp);
  } else if (mode == "hang") {
    hang(req, resp, faults, generation);
  }
}

void RequestHandler::handleRequest(Poco::Net::HTTPServerRequest& req,
                                   Poco::Net::HTTPServerResponse& resp) {
  const auto start = Clock::now();
  const std::string& uri = req.getURI();
  const auto q = uri.find('?');
  const std::string path = uri.substr(0, q);
  const std::string query = q == std::string::npos ? "" : uri.substr(q + 1);
  std::string label = path;
  try {
    if (startsWith(path, "/_devnode")) {
      handleControl(path, query, req, resp);
    } else {
      handleRpc(req, resp);
      label = "rpc";
    }
  } catch (const Poco::Exception& e) {
    // The client went away mid-reply: nothing to answer.
    if (node_.opts_.verbose) logLine("connection error: " + e.displayText());
  } catch (const std::exception& e) {
    // A bug in a handler: report it as the real node's internal error, keep serving.
    logLine(std::string("internal error: ") + e.what());
    if (!resp.sent()) send(resp, 200, errorEnvelope("null", -32603, "internal error"));
  }
  if (node_.opts_.verbose) {
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2fms", ms);
    logLine(req.clientAddress().toString() + " " + req.getMethod() + " " + path +
            (method_label_.empty() ? "" : " " + method_label_) + " -> " +
            (status_sent_ ? std::to_string(status_sent_) : std::string("closed")) + " " + buf);
  }
}

void RequestHandler::handleRpc(Poco::Net::HTTPServerRequest& req,
                               Poco::Net::HTTPServerResponse& resp) {
  const Options& o = node_.opts_;
  const bool theblock = o.profile == Profile::kTheBlock;
  const uint64_t generation = node_.generation_;
  {
    std::lock_guard<std::mutex> lock(node_.stats_mu_);
    node_.rpc_requests_++;
  }
  if (theblock) {
    const std::string host = hostWithoutPort(req.get("Host", ""));
    bool allowed = host == "127.0.0.1" || host == "localhost";
    for (const auto& h : o.allowed_hosts) allowed = allowed || hostWithoutPort(h) == host;
    if (!allowed) {
      node_.countEvent("host_rejected");
      send(resp, 403, "");
      return;
    }
    switch (node_.limiter_.check(req.clientAddress().host().toString())) {
      case RateLimiter::Verdict::kAllowed:
        break;
      case RateLimiter::Verdict::kLimited:
        node_.countEvent("rate_limited");
        send(resp, 429, errorEnvelope("null", -32001, "rate limited"));
        return;
      case RateLimiter::Verdict::kBanned:
        node_.countEvent("banned");
        send(resp, 429, errorEnvelope("null", -32002, "banned"));
        return;
    }
  }
  if (req.getURI() != "/" || req.getMethod() != Poco::Net::HTTPRequest::HTTP_POST) {
    node_.countEvent("not_post_root");
    send(resp, req.getURI() != "/" ? 404 : 405,
         theblock ? "" : "bb-devnode: JSON-RPC 2.0 is served on POST /\n", "text/plain");
    return;
  }
  if (req.hasContentLength() && req.getContentLength64() > static_cast<int64_t>(kMaxBodyBytes)) {
    resp.setKeepAlive(false);
    send(resp, 200, errorEnvelope("null", -32600, "request body too large (limit 1 MiB)"));
    return;
  }
  std::string body;
  {
    std::istream& in = req.stream();
    char buf[16384];
    while (in && body.size() <= kMaxBodyBytes) {
      in.read(buf, sizeof buf);
      body.append(buf, static_cast<size_t>(in.gcount()));
    }
    if (body.size() > kMaxBodyBytes) {
      resp.setKeepAlive(false);
      send(resp, 200, errorEnvelope("null", -32600, "request body too large (limit 1 MiB)"));
      return;
    }
  }
  Json request;
  try {
    request = Json::parse(body);
  } catch (const std::exception&) {
    node_.countEvent("parse_error");
    send(resp, 200, errorEnvelope("null", -32700, "parse error"));
    return;
  }
  auto faults = node_.faults();

  if (request.isArray()) {
    if (theblock || request.size() == 0) {
      // The real node deserialises one request object; an array fails as a parse error.
      node_.countEvent("batch_refused");
      send(resp, 200,
           errorEnvelope("null", theblock ? -32700 : -32600,
                         theblock ? "parse error" : "invalid request: empty batch"));
      return;
    }
    std::string out = "[";
    std::string first_mode;
    std::string method;
    for (size_t i = 0; i < request.size(); ++i) {
      Reply r = call(request[i], req, *faults, generation, &method);
      if (i == 0) first_mode = r.mode;
      if (r.http_status != 200 && r.mode.empty()) {
        send(resp, r.http_status, r.body);
        return;
      }
      if (i) out += ',';
      out += r.body;
    }
    out += ']';
    if (!first_mode.empty()) {
      applyMode(Reply{200, out, first_mode}, *faults, generation, req, resp);
      return;
    }
    send(resp, 200, out);
    return;
  }
  std::string method;
  Reply r = call(request, req, *faults, generation, &method);
  if (r.mode == "close") {
    closeWithoutReply(req, resp);
    return;
  }
  if (!r.mode.empty()) {
    applyMode(r, *faults, generation, req, resp);
    return;
  }
  send(resp, r.http_status, r.body);
}

RequestHandler::Reply RequestHandler::call(const Json& request, Poco::Net::HTTPServerRequest& req,
                                           const Faults& faults, uint64_t generation,
                                           std::string* method_out) {
  const Options& o = node_.opts_;
  const bool theblock = o.profile == Profile::kTheBlock;
  Reply reply;
  const Json* id_member = request.isObject() ? request.find("id") : nullptr;
  const std::string id = id_member ? dumpSorted(*id_member) : "null";
  const Json* method_member = request.isObject() ? request.find("method") : nullptr;
  if (!method_member || !method_member->isString()) {
    node_.countEvent("invalid_request");
    reply.body = errorEnvelope(id, -32600,
                               "invalid request: expected an object with a string "
                               "\"method\"");
    return reply;
  }
  const std::string& method = method_member->asString();
  *method_out = method;
  method_label_ += method_label_.empty() ? method : "," + method;
  node_.countMethod(method);
  const Json* params_member = request.find("params");
  const Json params = params_member ? *params_member : Json();

  if (int64_t ms = faults.latencyFor(method); ms > 0) node_.sleepInterruptible(ms, generation);
  if (faults.remove_methods.count(method)) {
    reply.body = errorEnvelope(id, -32601, "Method not found");
    return reply;
  }
  const bool targeted = faults.matches(method);
  bool mode_hit = false;
  if (targeted && !faults.mode.empty() && faults.mode_rate > 0)
    mode_hit = faults.mode_rate >= 1.0 ||
               static_cast<double>(node_.faultRoll() >> 11) * (1.0 / 9007199254740992.0) <
                   faults.mode_rate;
  if (mode_hit && faults.mode != "truncated" && faults.mode != "oversized") {
    // These modes never get to the method: there is no body to build.
    reply.mode = faults.mode;
    return reply;
  }
  if (targeted && faults.error_rate > 0 &&
      static_cast<double>(node_.faultRoll() >> 11) * (1.0 / 9007199254740992.0) <
          faults.error_rate) {
    node_.countEvent("fault_error");
    reply.body = errorEnvelope(id, -32603, "internal error (injected by bb-devnode)");
    return reply;
  }

  const std::string token = node_.effectiveToken(faults);
  const bool authorized = token.empty() || req.get("Authorization", "") == "Bearer " + token;
  if (!authorized && !theblock) {
    node_.countEvent("unauthorized");
    reply.http_status = 401;
    reply.body = errorEnvelope(id, -32000, "unauthorized: send Authorization: Bearer <token>");
    return reply;
  }

  if (theblock) {
    if (isAdminMethod(method)) {
      if (!authorized) {
        reply.body = errorEnvelope(id, -32601, "Method not found");
        return reply;
      }
      node_.mining_ = method == "start_mining";
      reply.body = resultEnvelope(id, "{\"status\":\"ok\"}");
      return reply;
    }
    if (startsWith(method, "energy.")) {
      if (!authorized) {
        node_.countEvent("energy_unauthorized");
        reply.body = errorEnvelope(id, -33009, "unauthorized");
        return reply;
      }
      if (node_.energy_limiter_.check(req.clientAddress().host().toString()) !=
          RateLimiter::Verdict::kAllowed) {
        node_.countEvent("energy_rate_limited");
        reply.http_status = 429;
        reply.body = errorEnvelope(id, -32001, "rate limited");
        return reply;
      }
    }
    // A debug build mining holds the chain lock for a long time: calls wait for it.
    if (const int64_t until = node_.stall_until_ns_.load(); until > 0) {
      const int64_t now = Clock::now().time_since_epoch().count();
      if (now < until) {
        node_.countEvent("mining_stall");
        node_.sleepInterruptible((until - now) / 1000000 + 1, generation);
      }
    }
    if (isLightMethod(method)) {
      if (node_.light_poisoned_) {
        node_.panics_++;  // the real node panics on the poisoned lock each time
        reply.mode = "close";
        return reply;
      }
      if (method == "light.latest_header" && node_.chain_.height() == 0) {
        // The real node panics here holding the light-client lock; the poisoned lock then
        // fails every later light.* call until it restarts.
        node_.panics_++;
        node_.light_poisoned_ = true;
        logLine(
            "light.latest_header on an empty chain: simulating the node's panic; light.* "
            "calls now fail until restart");
        reply.mode = "close";
        return reply;
      }
    }
    if (!params.isNull() && !params.isObject()) {
      reply.body = errorEnvelope(id, -32602, "parameters must be an object");
      return reply;
    }
    if (params.isNull() && needsParams(method)) {
      reply.body = errorEnvelope(id, -32602, "parameters must be an object");
      return reply;
    }
    if (opensPipeline(method)) {
      // Each open starts a repair thread that never ends; two at once race on the same files
      // and one of them panics (simple_db: "failed to parse manifest").
      node_.pipeline_reads_++;
      node_.leaked_threads_++;
      node_.leaked_threads_total_++;
      const int now_open = ++node_.pipeline_in_flight_;
      int seen = node_.pipeline_max_concurrent_.load();
      while (now_open > seen &&
             !node_.pipeline_max_concurrent_.compare_exchange_weak(seen, now_open)) {
      }
      if (o.pipeline_ms > 0) node_.sleepInterruptible(o.pipeline_ms, generation);
      const bool raced = now_open > 1 || node_.pipeline_in_flight_.load() > 1;
      --node_.pipeline_in_flight_;
      if (raced) {
        node_.panics_++;
        logLine(method +
                " ran beside another storage pipeline open: simulating the node's "
                "panic (simple_db: failed to parse manifest)");
        reply.mode = "close";
        return reply;
      }
    }
  }

  std::string result;
  int code = 0;
  std::string message;
  bool unknown = false;
  if (!node_.renderCached(method, params, &result, &code, &message, &unknown)) {
    reply.body =
        unknown ? errorEnvelope(id, -32601, "Method not found") : errorEnvelope(id, code, message);
  } else {
    reply.body = resultEnvelope(id, result);
  }
  if (mode_hit) reply.mode = faults.mode;  // truncated / oversized: they need the real body
  return reply;
}

void RequestHandler::handleControl(const std::string& path, const std::string& query,
                                   Poco::Net::HTTPServerRequest& req,
                                   Poco::Net::HTTPServerResponse& resp) {
  const std::string& verb = req.getMethod();
  std::string body;
  if (verb == "POST") {
    std::istream& in = req.stream();
    char buf[16384];
    while (in && body.size() <= kMaxBodyBytes) {
      in.read(buf, sizeof buf);
      body.append(buf, static_cast<size_t>(in.gcount()));
    }
  }
  auto bad = [&](const std::string& why) { send(resp, 400, dumpSorted(Json{{"error", why}})); };
  Json patch;
  if (!body.empty()) {
    try {
      patch = Json::parse(body);
    } catch (const std::exception& e) {
      return bad(std::string("the body is not valid JSON: ") + e.what());
    }
  }
  std::map<std::string, std::string> params;
  {
    Poco::URI uri("/?" + query);
    for (const auto& [k, v] : uri.getQueryParameters()) params[k] = v;
  }
  const Options& o = node_.opts_;

  if (path == "/_devnode/state" && verb == "GET") {
    Json summary = node_.chain_.read([](const ChainState& s) { return renderSummary(s); });
    summary["profile"] = profileName(o.profile);
    summary["seed"] = o.seed;
    summary["block_ms"] = o.block_ms;
    summary["mining"] = node_.mining_.load();
    summary["light_poisoned"] = node_.light_poisoned_.load();
    summary["rpc"] = o.host + ":" + std::to_string(node_.port_);
    summary["uptime_seconds"] =
        std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - node_.started_).count();
    summary["faults"] = node_.faults()->toJson();
    summary["auth_token_set"] = !node_.effectiveToken(*node_.faults()).empty();
    {
      std::lock_guard<std::mutex> lock(node_.stats_mu_);
      summary["rpc_requests"] = node_.rpc_requests_;
    }
    summary["hazards"] = node_.hazards();
    return send(resp, 200, dumpSorted(summary));
  }
  if (path == "/_devnode/faults") {
    if (verb == "GET") return send(resp, 200, dumpSorted(node_.faults()->toJson()));
    if (verb == "DELETE") {
      {
        std::lock_guard<std::mutex> lock(node_.faults_mu_);
        node_.faults_ = std::make_shared<const Faults>();
      }
      logLine("faults cleared");
      return send(resp, 200, dumpSorted(node_.faults()->toJson()));
    }
    if (verb == "POST") {
      int64_t down = 0;
      std::string error;
      {
        std::lock_guard<std::mutex> lock(node_.faults_mu_);
        Faults next = *node_.faults_;
        error = next.apply(patch, &down);
        if (error.empty()) node_.faults_ = std::make_shared<const Faults>(std::move(next));
      }
      if (!error.empty()) return bad(error);
      logLine("faults set: " + dumpSorted(node_.faults()->toJson()) +
              (down ? " down_seconds=" + std::to_string(down) : ""));
      Json out = node_.faults()->toJson();
      if (down) out["down_seconds"] = down;
      send(resp, 200, dumpSorted(out));
      // Only now, with the reply written, may the listener close.
      if (down) node_.requestDown(down);
      return;
    }
  }
  if (path == "/_devnode/replace" && verb == "POST") {
    send(resp, 200, dumpSorted(Json{{"replacing", true}}));
    node_.requestReplace();  // only now, with the reply written
    return;
  }
  if (path == "/_devnode/advance" && verb == "POST") {
    int64_t blocks = 1;
    if (patch.isObject() && patch.contains("blocks")) {
      const Json& b = patch["blocks"];
      if (!b.isInt() || b.asInt() < 0 || b.asInt() > 1000000)
        return bad("blocks must be an integer from 0 to 1000000");
      blocks = b.asInt();
    } else if (!patch.isNull() && !patch.isObject()) {
      return bad("the body must be {\"blocks\":N}");
    }
    node_.chain_.advance(static_cast<uint64_t>(blocks));
    return send(resp, 200, dumpSorted(Json{{"height", node_.chain_.height()}}));
  }
  if (path == "/_devnode/receipts" && verb == "GET") {
    std::optional<Market> market;
    uint64_t start = 0;
    if (params.count("market")) {
      Market m;
      if (!parseMarket(params["market"], &m))
        return bad("market must be one of compute, storage, energy, ad");
      market = m;
    }
    if (params.count("start_height")) {
      try {
        start = std::stoull(params["start_height"]);
      } catch (...) {
        return bad("start_height must be a non-negative integer");
      }
    }
    const bool sources = !params.count("sources") || params["sources"] != "0";
    std::string truth = node_.chain_.read([&](const ChainState& s) {
      return renderGroundTruth(s, o.profile, market, start, sources);
    });
    return send(resp, 200, truth);
  }
  if (path == "/_devnode/stats") {
    if (verb == "DELETE") {
      std::lock_guard<std::mutex> lock(node_.stats_mu_);
      node_.method_counts_.clear();
      node_.event_counts_.clear();
      node_.rpc_requests_ = 0;
    }
    if (verb == "GET" || verb == "DELETE") {
      Json methods = Json::object();
      Json events = Json::object();
      uint64_t total = 0;
      {
        std::lock_guard<std::mutex> lock(node_.stats_mu_);
        for (const auto& [m, n] : node_.method_counts_) methods[m] = n;
        for (const auto& [e, n] : node_.event_counts_) events[e] = n;
        total = node_.rpc_requests_;
      }
      return send(resp, 200,
                  dumpSorted(Json{{"methods", methods},
                                  {"events", events},
                                  {"http_requests", total},
                                  {"hazards", node_.hazards()}}));
    }
  }
  send(resp, 404,
       dumpSorted(Json{{"error", "unknown control endpoint " + verb + " " + path +
                                     "; see bb-devnode --help (Control API)"}}));
}

// ---- Node ----------------------------------------------------------------------------------

Node::Node(Options o)
    : opts_(std::move(o)),
      chain_(opts_),
      limiter_(opts_.profile == Profile::kTheBlock ? opts_.rate_limit : 0, opts_.rate_burst,
               opts_.ban_seconds),
      energy_limiter_(opts_.profile == Profile::kTheBlock ? opts_.energy_rate_limit : 0,
                      std::max(1.0, opts_.energy_rate_limit), 0),
      pool_(8, opts_.threads + 8, 60),
      mining_(opts_.block_ms > 0),
      started_(Clock::now()),
      faults_(std::make_shared<const Faults>(opts_.faults)),
      fault_rng_state_(mix64(opts_.seed, 0xFA017)) {}

Node::~Node() { stop(); }

std::shared_ptr<const Faults> Node::faults() const {
  std::lock_guard<std::mutex> lock(faults_mu_);
  return faults_;
}

std::string Node::effectiveToken(const Faults& f) const {
  return f.auth_token ? *f.auth_token : opts_.auth_token;
}

uint64_t Node::faultRoll() {
  std::lock_guard<std::mutex> lock(faults_mu_);
  Rng r(fault_rng_state_);
  fault_rng_state_ = r.next();
  return r.next();
}

void Node::countMethod(const std::string& method) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  method_counts_[method]++;
}

void Node::countEvent(const std::string& event) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  event_counts_[event]++;
}

void Node::sleepInterruptible(int64_t ms, uint64_t generation) const {
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (!stopping_ && generation_ == generation) {
    const auto now = Clock::now();
    if (now >= until) return;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(until - now, std::chrono::milliseconds(50)));
  }
}

bool Node::renderCached(const std::string& method, const Json& params, std::string* result_text,
                        int* error_code, std::string* error_message, bool* unknown) {
  const std::string key = method + '\x1f' + dumpSorted(params);
  const uint64_t height = chain_.height();
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_height_ != height) {
      cache_.clear();
      cache_height_ = height;
    }
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      *result_text = *it->second;
      return true;
    }
  }
  Json result;
  RpcError error;
  uint64_t rendered_at = 0;
  CallStatus status = chain_.read([&](const ChainState& s) {
    rendered_at = s.height;
    return opts_.profile == Profile::kSpec ? renderSpec(s, method, params, &result, &error)
                                           : renderTheBlock(s, method, params, &result, &error);
  });
  if (status == CallStatus::kUnknownMethod) {
    *unknown = true;
    return false;
  }
  if (status == CallStatus::kError) {
    *error_code = error.code;
    *error_message = error.message;
    return false;
  }
  auto text = std::make_shared<const std::string>(dumpSorted(result));
  *result_text = *text;
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (cache_height_ == rendered_at && cache_.size() < kMaxCacheEntries) cache_[key] = text;
  return true;
}

void Node::listen() {
  Poco::Net::ServerSocket socket;
  // SO_REUSEADDR (a quick restart, the "down" fault reopening the port), never SO_REUSEPORT,
  // which Poco's two-argument bind also sets: a second node on a taken port must fail here.
  socket.bind(Poco::Net::SocketAddress(opts_.host, static_cast<Poco::UInt16>(port_)),
              /*reuseAddress=*/true, /*reusePort=*/false);
  socket.listen(1024);
  port_ = socket.address().port();
  auto params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(opts_.threads);
  params->setMaxQueued(4096);
  params->setKeepAlive(true);
  params->setKeepAliveTimeout(Poco::Timespan(15, 0));
  params->setTimeout(Poco::Timespan(30, 0));
  params->setServerName("bb-devnode");
  params->setSoftwareVersion("");
  server_ =
      std::make_unique<Poco::Net::HTTPServer>(new HandlerFactory(*this), pool_, socket, params);
  server_->start();
}

void Node::closeListener() {
  if (!server_) return;
  generation_++;
  server_->stopAll(true);
  server_.reset();
}

void Node::start() {
  port_ = opts_.port;
  listen();
  producer_ = std::thread([this] { produceBlocks(); });
  if (opts_.down_seconds > 0) {
    down_timer_ = std::thread([this] {
      const auto at = Clock::now() + std::chrono::milliseconds(opts_.down_after_ms);
      while (!stopping_ && Clock::now() < at)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (!stopping_) requestDown(opts_.down_seconds);
    });
  }
}

void Node::stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(blocks_mu_);
    blocks_cv_.notify_all();
  }
  down_cv_.notify_all();
  if (producer_.joinable()) producer_.join();
  if (down_timer_.joinable()) down_timer_.join();
  closeListener();
  pool_.joinAll();
}

Json Node::hazards() const {
  return Json{{"pipeline_reads", pipeline_reads_.load()},
              {"pipeline_max_concurrent", pipeline_max_concurrent_.load()},
              {"leaked_threads", leaked_threads_.load()},
              {"leaked_threads_total", leaked_threads_total_.load()},
              {"panics", panics_.load()},
              {"replacements", replacements_.load()},
              {"light_poisoned", light_poisoned_.load()}};
}

void Node::requestReplace() {
  std::lock_guard<std::mutex> lock(down_mu_);
  replace_requested_ = true;
  down_cv_.notify_all();
}

void Node::requestDown(int64_t seconds) {
  std::lock_guard<std::mutex> lock(down_mu_);
  down_requested_ = seconds;
  down_cv_.notify_all();
}

void Node::serviceDownRequests(const std::function<bool()>& interrupted) {
  int64_t seconds = 0;
  bool replace = false;
  {
    std::lock_guard<std::mutex> lock(down_mu_);
    std::swap(seconds, down_requested_);
    std::swap(replace, replace_requested_);
  }
  if (replace && !stopping_) {
    logLine("replaced by a fresh node: every connection dropped, empty chain, not mining");
    closeListener();
    chain_.reset(opts_);
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      cache_.clear();
      cache_height_ = UINT64_MAX;
    }
    light_poisoned_ = false;
    mining_ = false;
    stall_until_ns_ = 0;
    leaked_threads_ = 0;
    replacements_++;
    for (int attempt = 0;; ++attempt) {
      try {
        listen();
        break;
      } catch (const Poco::Exception& e) {
        if (attempt >= 100) {
          logLine("cannot listen again on port " + std::to_string(port_) + ": " + e.displayText() +
                  "; exiting");
          std::exit(1);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    logLine("fresh node up on port " + std::to_string(port_));
  }
  if (seconds <= 0 || stopping_) return;
  logLine("going down for " + std::to_string(seconds) + " s (listener and connections closed)");
  down_ = true;
  closeListener();
  const auto until = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < until && !interrupted() && !stopping_)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (interrupted() || stopping_) return;
  // The port may be briefly busy (another process grabbed it): retry for a while.
  for (int attempt = 0;; ++attempt) {
    try {
      listen();
      break;
    } catch (const Poco::Exception& e) {
      if (attempt >= 100 || interrupted()) {
        logLine("cannot listen again on port " + std::to_string(port_) + ": " + e.displayText() +
                "; exiting");
        std::exit(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  down_ = false;
  logLine("up again on port " + std::to_string(port_));
}

void Node::produceBlocks() {
  auto next = Clock::now();
  while (!stopping_) {
    const int64_t interval = opts_.block_ms > 0 ? opts_.block_ms : 1000;
    next += std::chrono::milliseconds(interval);
    {
      std::unique_lock<std::mutex> lock(blocks_mu_);
      blocks_cv_.wait_until(lock, next, [this] { return stopping_.load(); });
    }
    if (stopping_) break;
    const auto now = Clock::now();
    if (now > next + std::chrono::milliseconds(interval * 5)) next = now;  // fell behind: skip
    // With --block-ms 0 mining starts off: only start_mining (one block a second) or
    // /_devnode/advance make blocks. stop_mining pauses either way.
    if (mining_) {
      if (opts_.mining_stall_ms > 0 && opts_.profile == Profile::kTheBlock)
        stall_until_ns_ = (Clock::now() + std::chrono::milliseconds(opts_.mining_stall_ms))
                              .time_since_epoch()
                              .count();
      chain_.advance(1);
    }
  }
}

}  // namespace devnode
