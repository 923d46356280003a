#include "ws/ws_client.h"

#include <Poco/Buffer.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/WebSocket.h>

#include <stdexcept>

namespace bbtest {

using Poco::Net::WebSocket;

struct WsClient::Impl {
  Poco::Net::HTTPClientSession session;
  std::unique_ptr<WebSocket> ws;
  Impl(int port) : session("127.0.0.1", static_cast<Poco::UInt16>(port)) {}
};

namespace {

Poco::Net::HTTPRequest upgradeRequest(const std::string& path, const std::string& origin) {
  Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, path,
                             Poco::Net::HTTPMessage::HTTP_1_1);
  if (!origin.empty()) req.set("Origin", origin);
  return req;
}

}  // namespace

WsClient::WsClient(int port, const std::string& path, const std::string& origin)
    : impl_(std::make_unique<Impl>(port)) {
  auto req = upgradeRequest(path, origin);
  Poco::Net::HTTPResponse resp;
  try {
    impl_->session.setTimeout(Poco::Timespan(10, 0));
    impl_->ws = std::make_unique<WebSocket>(impl_->session, req, resp);
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("WebSocket upgrade to port " + std::to_string(port) + path +
                             " failed: HTTP " + std::to_string(resp.getStatus()) + ": " +
                             e.displayText());
  }
  impl_->ws->setMaxPayloadSize(16 * 1024 * 1024);
}

WsClient::~WsClient() = default;

int WsClient::tryUpgrade(int port, const std::string& path, const std::string& origin) {
  Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
  session.setTimeout(Poco::Timespan(10, 0));
  auto req = upgradeRequest(path, origin);
  Poco::Net::HTTPResponse resp;
  try {
    WebSocket ws(session, req, resp);
    return 101;
  } catch (const Poco::Exception&) {
    return resp.getStatus();
  }
}

void WsClient::sendText(const std::string& text) {
  impl_->ws->sendFrame(text.data(), static_cast<int>(text.size()), WebSocket::FRAME_TEXT);
}

void WsClient::sendFrame(const std::string& payload, int flags) {
  impl_->ws->sendFrame(payload.data(), static_cast<int>(payload.size()), flags);
}

std::optional<blockbuster::Json> WsClient::receive(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!closed_) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    impl_->ws->setReceiveTimeout(Poco::Timespan(left.count()));
    Poco::Buffer<char> buf(0);
    int flags = 0;
    int n = 0;
    try {
      n = impl_->ws->receiveFrame(buf, flags);
    } catch (const Poco::TimeoutException&) {
      return std::nullopt;
    } catch (const Poco::Exception&) {
      closed_ = true;
      return std::nullopt;
    }
    int op = flags & WebSocket::FRAME_OP_BITMASK;
    if (n == 0 && flags == 0) {
      closed_ = true;
      return std::nullopt;
    }
    if (op == WebSocket::FRAME_OP_CLOSE) {
      closed_ = true;
      if (buf.size() >= 2)
        close_code_ =
            (static_cast<unsigned char>(buf[0]) << 8) | static_cast<unsigned char>(buf[1]);
      return std::nullopt;
    }
    if (op == WebSocket::FRAME_OP_PING) {
      impl_->ws->sendFrame(buf.begin(), static_cast<int>(buf.size()),
                           WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_PONG);
      continue;
    }
    if (op != WebSocket::FRAME_OP_TEXT) continue;
    try {
      return blockbuster::Json::parse(std::string_view(buf.begin(), buf.size()));
    } catch (const blockbuster::JsonError&) {
      ++bad_;
    }
  }
  return std::nullopt;
}

std::optional<blockbuster::Json> WsClient::receiveUntil(
    const std::function<bool(const blockbuster::Json&)>& match, std::chrono::milliseconds timeout,
    const std::function<void(const blockbuster::Json&)>& seen) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto m = receive(left);
    if (!m) {
      if (closed_) return std::nullopt;
      continue;
    }
    if (seen) seen(*m);
    if (match(*m)) return m;
  }
}

}  // namespace bbtest
