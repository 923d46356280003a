#include "reliability/reliability_support.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace bbrel {

using blockbuster::Json;
using Clock = std::chrono::steady_clock;

namespace {

int countEntries(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

}  // namespace

ProcStats procStats(int pid) {
  ProcStats s;
  const std::string base = "/proc/" + std::to_string(pid);
  s.threads = countEntries(base + "/task");
  s.fds = countEntries(base + "/fd");
  std::ifstream status(base + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream in(line.substr(6));
      in >> s.rss_kb;
    }
  }
  return s;
}

Timed timedGet(int port, const std::string& target) {
  auto start = Clock::now();
  Timed t;
  t.result = bbtest::httpGet(port, target);
  t.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return t;
}

Json getJson(int port, const std::string& target, int expect_status) {
  auto r = bbtest::httpGet(port, target);
  if (r.status != expect_status) return Json();
  try {
    return r.json();
  } catch (const blockbuster::JsonError&) {
    return Json();
  }
}

bool setFaults(bbtest::DevNode& node, const std::string& json) {
  return bbtest::httpRequest(node.port(), "POST", "/_devnode/faults",
                             {{"Content-Type", "application/json"}}, json)
             .status == 200;
}

bool clearFaults(bbtest::DevNode& node) {
  return bbtest::httpRequest(node.port(), "DELETE", "/_devnode/faults").status == 200;
}

long nodeHttpRequests(bbtest::DevNode& node) {
  const Json stats = getJson(node.port(), "/_devnode/stats");
  return stats["http_requests"].isInt() ? static_cast<long>(stats["http_requests"].asInt()) : -1;
}

std::string agentConfig(int interval_ms, const std::string& extra) {
  std::string y =
      "rpc:\n"
      "  max_requests_per_second: 400\n"
      "  burst: 100\n"
      "  timeout_ms: 1000\n"
      "  retries: 1\n"
      "  backoff_initial_ms: 50\n"
      "  backoff_max_ms: 200\n"
      "plugins:\n";
  for (const char* p : {"network", "compute", "storage", "energy", "ads", "receipts"})
    y += std::string("  ") + p + ":\n    interval_ms: " + std::to_string(interval_ms) +
         "\n    timeout_ms: 1000\n";
  return y + extra;
}

// ---- NodeProxy --------------------------------------------------------------------------------

struct NodeProxy::Impl {
  int upstream = 0;
  std::unique_ptr<Poco::Net::HTTPServer> server;
  mutable std::mutex mutex;
  std::string mutate_method;  // guarded by mutex
  Mutator mutator;            // guarded by mutex
  Clock::time_point ban_until{};
  bool ban_announced = false;
  bool forbidden = false;
  std::atomic<long> requests{0};

  void handle(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp);
};

namespace {

class Handler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(NodeProxy::Impl* impl) : impl_(impl) {}
  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) override;

 private:
  NodeProxy::Impl* impl_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(NodeProxy::Impl* impl) : impl_(impl) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new Handler(impl_);
  }

 private:
  NodeProxy::Impl* impl_;
};

void send(Poco::Net::HTTPServerResponse& resp, int status, const std::string& body) {
  resp.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
  resp.setContentType("application/json");
  resp.setContentLength(static_cast<std::streamsize>(body.size()));
  resp.send() << body;
}

}  // namespace

void Handler::handleRequest(Poco::Net::HTTPServerRequest& req,
                            Poco::Net::HTTPServerResponse& resp) {
  impl_->handle(req, resp);
}

void NodeProxy::Impl::handle(Poco::Net::HTTPServerRequest& req,
                             Poco::Net::HTTPServerResponse& resp) {
  ++requests;
  std::string body;
  Poco::StreamCopier::copyToString(req.stream(), body);
  std::string method;
  try {
    const Json call = Json::parse(body);
    if (call["method"].isString()) method = call["method"].asString();
  } catch (const blockbuster::JsonError&) {
  }
  Mutator mutator_now;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (forbidden) {
      send(resp, 403, "");
      return;
    }
    const auto now = Clock::now();
    if (now < ban_until) {
      const int left =
          static_cast<int>(std::ceil(std::chrono::duration<double>(ban_until - now).count()));
      resp.set("Retry-After", std::to_string(left));
      const bool first = !ban_announced;
      ban_announced = true;
      send(resp, 429,
           first ? R"({"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"rate limited"}})"
                 : R"({"jsonrpc":"2.0","id":null,"error":{"code":-32002,"message":"banned"}})");
      return;
    }
    if (!mutate_method.empty() && method == mutate_method) mutator_now = mutator;
  }
  Poco::Net::HTTPClientSession upstream_session("127.0.0.1", static_cast<Poco::UInt16>(upstream));
  upstream_session.setTimeout(Poco::Timespan(10, 0));
  Poco::Net::HTTPRequest forward(Poco::Net::HTTPRequest::HTTP_POST, "/",
                                 Poco::Net::HTTPMessage::HTTP_1_1);
  forward.setHost("127.0.0.1");
  forward.setContentType("application/json");
  forward.setContentLength(static_cast<std::streamsize>(body.size()));
  if (req.has("Authorization")) forward.set("Authorization", req.get("Authorization"));
  std::string reply;
  int status = 502;
  try {
    upstream_session.sendRequest(forward) << body;
    Poco::Net::HTTPResponse up;
    std::istream& in = upstream_session.receiveResponse(up);
    Poco::StreamCopier::copyToString(in, reply);
    status = up.getStatus();
  } catch (const Poco::Exception&) {
    send(resp, 502, "");
    return;
  }
  if (mutator_now) {
    try {
      Json envelope = Json::parse(reply);
      if (envelope.contains("result")) {
        envelope["result"] = mutator_now(envelope["result"]);
        reply = envelope.dump();
      }
    } catch (const blockbuster::JsonError&) {
    }
  }
  send(resp, status, reply);
}

NodeProxy::NodeProxy(int upstream_port) : impl_(std::make_unique<Impl>()) {
  impl_->upstream = upstream_port;
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  auto params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(32);
  params->setKeepAlive(true);
  impl_->server = std::make_unique<Poco::Net::HTTPServer>(new Factory(impl_.get()), socket, params);
  impl_->server->start();
}

NodeProxy::~NodeProxy() { impl_->server->stopAll(true); }

int NodeProxy::port() const { return impl_->server->socket().address().port(); }

void NodeProxy::mutate(const std::string& method, Mutator mutate) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->mutate_method = method;
  impl_->mutator = std::move(mutate);
}

void NodeProxy::ban(int seconds) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->ban_until = Clock::now() + std::chrono::seconds(seconds);
  impl_->ban_announced = false;
}

void NodeProxy::forbid(bool on) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->forbidden = on;
}

long NodeProxy::requests() const { return impl_->requests.load(); }

}  // namespace bbrel
