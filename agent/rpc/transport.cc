#include "rpc/transport.h"

#include <Poco/Exception.h>
#include <Poco/Net/DNS.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/StreamSocketImpl.h>
#include <Poco/Timespan.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "config/node_url.h"
#include "rpc/tls_client.h"

namespace bb {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kReadChunk = 4096;

Poco::Timespan toTimespan(Clock::duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return Poco::Timespan(std::max<int64_t>(us, 1000));
}

// The TLS module's client context for an https node (throws ConfigError).
std::shared_ptr<void> tlsContext(const std::string& ca_file) {
  if (!ca_file.empty() && !std::ifstream(ca_file).good()) {
    throw ConfigError("rpc.tls_ca_file: cannot read " + ca_file + " (" + std::strerror(errno) +
                      "); give the PEM file of the CA that signed the node's (or its TLS "
                      "proxy's) certificate, readable by the agent");
  }
  const TlsClientApi* api = nullptr;
  try {
    api = &tlsClientApi();
  } catch (const std::exception& e) {
    throw ConfigError(std::string("rpc_url: an https:// node URL needs TLS, but ") + e.what());
  }
  std::string error;
  auto context = api->context(ca_file, error);
  if (!context) {
    if (ca_file.empty()) {
      throw ConfigError("rpc_url: cannot load the system's CA certificates (" + error +
                        "); set rpc.tls_ca_file to the CA that signed the node's certificate");
    }
    throw ConfigError("rpc.tls_ca_file: " + ca_file + " holds no usable CA certificate (" + error +
                      "); give a PEM file (-----BEGIN CERTIFICATE-----)");
  }
  return context;
}

// How often a wait on the node's socket looks at the client's stop flag: the longest a call in
// flight takes to end after shutdown().
constexpr milliseconds kStopCheck{50};

}  // namespace

// The socket of a session. Every connect, receive and send waits in slices of kStopCheck and
// throws Poco::TimeoutException at the exchange's deadline or as soon as the client stops.
// Poco's own receive timeout restarts with each byte, so a reply dribbled one byte at a time
// would hold a call (and shutdown) for as long as the node likes; this bounds the whole
// exchange, head and body, whatever the peer does.
class DeadlineSocketImpl : public Poco::Net::StreamSocketImpl {
 public:
  explicit DeadlineSocketImpl(const std::atomic<bool>& stop) : stop_(stop) {}
  void arm(Clock::time_point deadline) { deadline_ = deadline; }
  /// Waits for `mode` until the armed deadline (TLS sockets wait on this socket through it).
  void wait(int mode) { waitUntil(deadline_, mode); }

  void connect(const Poco::Net::SocketAddress& address, const Poco::Timespan& timeout) override {
    const auto until =
        std::min(deadline_, Clock::now() + std::chrono::microseconds(timeout.totalMicroseconds()));
    connectNB(address);  // leaves the socket non-blocking
    try {
      waitUntil(until, SELECT_READ | SELECT_WRITE | SELECT_ERROR);
      if (const int err = socketError(); err != 0) error(err, address.toString());
    } catch (...) {
      setBlocking(true);
      throw;
    }
    setBlocking(true);
  }
  int receiveBytes(void* buffer, int length, int flags) override {
    waitUntil(deadline_, SELECT_READ | SELECT_ERROR);
    return StreamSocketImpl::receiveBytes(buffer, length, flags);
  }
  int sendBytes(const void* buffer, int length, int flags) override {
    waitUntil(deadline_, SELECT_WRITE | SELECT_ERROR);
    return StreamSocketImpl::sendBytes(buffer, length, flags);
  }

 private:
  void waitUntil(Clock::time_point until, int mode) {
    for (;;) {
      if (stop_.load()) throw Poco::TimeoutException("the client is shutting down");
      const auto left = until - Clock::now();
      if (left <= Clock::duration::zero()) throw Poco::TimeoutException("deadline passed");
      if (poll(toTimespan(std::min<Clock::duration>(left, kStopCheck)), mode)) return;
    }
  }

  const std::atomic<bool>& stop_;
  Clock::time_point deadline_ = Clock::time_point::max();
};

PooledSession::PooledSession() = default;
PooledSession::~PooledSession() = default;

Connections::Connections(const RpcConfig& config) : config_(config) {
  // The same check as the config loader's (--check-config refuses what this refuses); its
  // messages never show credentials.
  NodeUrl url;
  NodeUrlProblem problem;
  if (!parseNodeUrl(config.url, NodeUrlUse::kRpc, url, problem)) {
    throw ConfigError("rpc_url: " + problem.what + "; " + problem.fix);
  }
  host_ = url.host;
  port_ = url.port;
  host_header_ = url.host_header;
  target_ = url.target;
  where_ = url.scheme + "://" + host_header_ + ":" + std::to_string(port_) + target_;
  if (url.scheme == "https") tls_ = tlsContext(config.tls_ca_file);
}

Connections::~Connections() = default;

void Connections::shutdown() {
  std::vector<std::unique_ptr<PooledSession>> idle;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    shutting_down_ = true;
    stop_io_ = true;
    idle.swap(idle_);
    live_ -= static_cast<int>(idle.size());
  }
  cv_.notify_all();
}

std::optional<Refusal> Connections::take(Clock::time_point deadline,
                                         std::unique_ptr<PooledSession>& out) {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (shutting_down_)
      return Refusal{RpcStatus::Shutdown, RpcFailure::Shutdown, "the client is shutting down"};
    if (!idle_.empty()) {
      out = std::move(idle_.back());
      idle_.pop_back();
      return std::nullopt;
    }
    if (live_ < config_.max_connections) {
      ++live_;
      out = std::make_unique<PooledSession>();
      return std::nullopt;
    }
    const bool woke = cv_.wait_until(lock, deadline, [&] {
      return shutting_down_ || !idle_.empty() || live_ < config_.max_connections;
    });
    if (!woke) {
      return Refusal{RpcStatus::Timeout, RpcFailure::Timeout,
                     "no free connection before the deadline (all max_connections=" +
                         std::to_string(config_.max_connections) + " busy)"};
    }
  }
}

void Connections::giveBack(std::unique_ptr<PooledSession> pooled, bool reusable) {
  std::unique_ptr<PooledSession> discard;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (reusable && !shutting_down_ && pooled->session) {
      idle_.push_back(std::move(pooled));
    } else {
      discard = std::move(pooled);
      --live_;
    }
  }
  cv_.notify_all();
  // `discard` closes its socket here, outside the lock.
}

std::vector<Poco::Net::IPAddress> Connections::resolve() {
  Poco::Net::IPAddress literal;
  if (Poco::Net::IPAddress::tryParse(host_, literal)) return {literal};
  auto addresses = Poco::Net::DNS::hostByName(host_).addresses();
  // IPv4 first: the real node binds 127.0.0.1, and "localhost" often lists ::1 first.
  std::stable_sort(addresses.begin(), addresses.end(),
                   [](const Poco::Net::IPAddress& a, const Poco::Net::IPAddress& b) {
                     return a.family() == Poco::Net::IPAddress::IPv4 &&
                            b.family() != Poco::Net::IPAddress::IPv4;
                   });
  std::lock_guard<std::mutex> lock(mutex_);
  if (good_address_) {
    auto it = std::find(addresses.begin(), addresses.end(), *good_address_);
    if (it != addresses.end()) std::rotate(addresses.begin(), it, it + 1);
  }
  return addresses;
}

Attempt Connections::exchange(PooledSession& pooled, const std::string& body, int64_t id,
                              Clock::time_point deadline) {
  Attempt out;
  const auto attempt_deadline =
      std::min(deadline, Clock::now() + milliseconds(config_.connect_timeout_ms) +
                             milliseconds(config_.timeout_ms));
  const bool reused = pooled.uses > 0;
  try {
    if (pooled.session) {
      pooled.socket->arm(attempt_deadline);
      send(*pooled.session, body, id, attempt_deadline, out);
    } else {
      // A fresh connection: try each address of the host until one accepts.
      const auto addresses = resolve();
      if (addresses.empty()) throw Poco::Net::NoAddressFoundException(host_);
      for (std::size_t i = 0; i < addresses.size(); ++i) {
        auto* plain = new DeadlineSocketImpl(stop_io_);
        pooled.socket = plain;
        Poco::Net::StreamSocketImpl* socket = plain;
        // https: TLS over the same deadline socket; the handshake is part of connecting.
        if (tls_)
          socket = tlsClientApi().socket(tls_, plain, host_, [plain](int m) { plain->wait(m); });
        pooled.session =
            std::make_unique<Poco::Net::HTTPClientSession>(Poco::Net::StreamSocket(socket));
        pooled.session->setHost(addresses[i].toString());
        pooled.session->setPort(port_);
        pooled.session->setKeepAlive(true);
        try {
          pooled.socket->arm(attempt_deadline);
          send(*pooled.session, body, id, attempt_deadline, out);
          std::lock_guard<std::mutex> lock(mutex_);
          good_address_ = addresses[i];
          break;
        } catch (const Poco::Net::ConnectionRefusedException&) {
          if (i + 1 == addresses.size()) throw;
        }
      }
    }
    ++pooled.uses;
    return out;
  } catch (const Poco::TimeoutException&) {
    if (stop_io_.load()) {
      out.fail(RpcStatus::Shutdown, RpcFailure::Shutdown,
               "the client is shutting down (the exchange in flight was cut)");
    } else {
      out.fail(RpcStatus::Timeout, RpcFailure::Timeout,
               "no complete reply from " + where_ + " within the timeout");
      out.retryable = true;
    }
  } catch (const Poco::Net::ConnectionRefusedException&) {
    out.fail(RpcStatus::Transport, RpcFailure::Refused,
             "connection refused by " + where_ + " (is the node running with its RPC on?)");
    out.retryable = true;
    out.never_sent = true;
  } catch (const Poco::Net::NoMessageException&) {
    out.fail(RpcStatus::Transport, RpcFailure::Dropped,
             "empty reply from " + where_ +
                 " (the node closed the connection without answering, e.g. a handler panic)");
    out.retryable = true;
    out.stale = reused;
  } catch (const Poco::Net::ConnectionResetException&) {
    out.fail(RpcStatus::Transport, RpcFailure::Dropped, "connection reset by " + where_);
    out.retryable = true;
    out.stale = reused;
  } catch (const Poco::Net::DNSException& e) {
    out.fail(RpcStatus::Transport, RpcFailure::Resolve,
             "cannot resolve " + host_ + " (" + e.displayText() + ")");
    out.retryable = true;
  } catch (const Poco::Net::MessageException& e) {
    out.fail(RpcStatus::BadResponse, RpcFailure::BadReply,
             "not an HTTP reply from " + where_ + " (" + e.displayText() + ")");
  } catch (const Poco::Exception& e) {
    if (e.code() == kTlsUntrustedCode) {
      // A setting to fix, not a passing fault: not retried, and the request was never sent.
      out.fail(RpcStatus::Transport, RpcFailure::Tls,
               "TLS with " + where_ + " refused: " + e.message() +
                   "; set rpc.tls_ca_file (BLOCK_BUSTER_RPC_TLS_CA_FILE) to the CA that signed "
                   "its certificate");
      out.never_sent = true;
    } else {
      out.fail(RpcStatus::Transport, RpcFailure::Io,
               "I/O error with " + where_ + " (" + e.displayText() + ")");
      out.retryable = true;
    }
  } catch (const std::exception& e) {
    out.fail(RpcStatus::Transport, RpcFailure::Io,
             std::string("I/O error with ") + where_ + " (" + e.what() + ")");
    out.retryable = true;
  }
  out.reusable = false;
  return out;
}

void Connections::send(Poco::Net::HTTPClientSession& session, const std::string& body, int64_t id,
                       Clock::time_point attempt_deadline, Attempt& out) {
  const auto left = attempt_deadline - Clock::now();
  if (left <= Clock::duration::zero()) throw Poco::TimeoutException("deadline passed");
  const auto io = toTimespan(std::min<Clock::duration>(left, milliseconds(config_.timeout_ms)));
  session.setTimeout(
      toTimespan(std::min<Clock::duration>(left, milliseconds(config_.connect_timeout_ms))), io,
      io);
  // setTimeout only reaches the socket on (re)connect; a kept-alive one needs it directly.
  if (session.connected()) {
    session.socket().setReceiveTimeout(io);
    session.socket().setSendTimeout(io);
  }

  Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_POST, target_,
                                 Poco::Net::HTTPMessage::HTTP_1_1);
  request.setHost(host_header_);
  request.setContentType("application/json");
  request.setContentLength(static_cast<std::streamsize>(body.size()));
  request.setKeepAlive(true);
  request.set("Accept", "application/json");
  if (!config_.auth_token.empty()) request.set("Authorization", "Bearer " + config_.auth_token);

  std::ostream& request_stream = session.sendRequest(request);
  request_stream.exceptions(std::ios::badbit);
  request_stream.write(body.data(), static_cast<std::streamsize>(body.size()));
  request_stream.flush();

  Poco::Net::HTTPResponse response;
  std::istream& reply_stream = session.receiveResponse(response);
  out.http_status = static_cast<int>(response.getStatus());
  const int64_t cap = config_.max_response_bytes;
  if (response.hasContentLength() && response.getContentLength64() > cap) {
    out.fail(RpcStatus::Limit, RpcFailure::TooLarge,
             "reply of " + std::to_string(response.getContentLength64()) +
                 " bytes exceeds max_response_bytes=" + std::to_string(cap) +
                 "; refused unread (raise rpc.max_response_bytes if the node is right)");
    out.reusable = false;
    session.reset();
    return;
  }

  // Read in chunks so the deadline and the size cap are checked as the body arrives.
  reply_stream.exceptions(std::ios::badbit);
  std::string reply;
  char chunk[kReadChunk];
  for (;;) {
    const auto remaining = attempt_deadline - Clock::now();
    if (remaining <= Clock::duration::zero()) {
      throw Poco::TimeoutException("reply body not complete");
    }
    session.socket().setReceiveTimeout(toTimespan(remaining));
    reply_stream.read(chunk, sizeof chunk);
    const auto got = reply_stream.gcount();
    reply.append(chunk, static_cast<std::size_t>(got));
    if (static_cast<int64_t>(reply.size()) > cap) {
      out.fail(RpcStatus::Limit, RpcFailure::TooLarge,
               "reply exceeds max_response_bytes=" + std::to_string(cap) +
                   " bytes; refused (raise rpc.max_response_bytes if the node is right)");
      out.reusable = false;
      session.reset();
      return;
    }
    if (got < static_cast<std::streamsize>(sizeof chunk)) break;
  }
  if (response.hasContentLength() &&
      static_cast<int64_t>(reply.size()) < response.getContentLength64()) {
    out.fail(RpcStatus::Transport, RpcFailure::Dropped,
             "truncated reply from " + where_ + " (" + std::to_string(reply.size()) + " of " +
                 std::to_string(response.getContentLength64()) + " bytes)");
    out.retryable = true;
    out.reusable = false;
    session.reset();
    return;
  }
  out.reusable = response.getKeepAlive();
  judgeReply(out.http_status, response.get("Retry-After", ""), reply, id, out);
}

}  // namespace bb
