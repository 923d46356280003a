// HttpServer: binds, then serves through the reactor (event_server.cc), plain or over TLS. What
// a request gets is decided in one place (request_flow.cc).
#include "http/server.h"

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>

#include <atomic>
#include <stdexcept>

#include "http/event_server.h"
#include "http/request_flow.h"

namespace bb {

struct HttpServer::Impl {
  std::atomic<UpgradeHandler*> upgrade{nullptr};
  std::unique_ptr<http_detail::RequestFlow> flow;
  std::unique_ptr<net::TlsContext> tls;  // TLS listeners: the certificate, loaded once
  Poco::Net::ServerSocket socket;
  int port = 0;
  std::unique_ptr<http_detail::EventServer> events;
};

HttpServer::HttpServer(ServerOptions options, Handler handler, Observer observer)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  // A bad certificate or a missing module stops here, before the port is taken.
  if (!options_.tls_cert_file.empty())
    impl_->tls = std::make_unique<net::TlsContext>(options_.tls_cert_file, options_.tls_key_file,
                                                   options_.name, options_.tls_config_key);
  try {
    Poco::Net::SocketAddress address(options_.host, static_cast<Poco::UInt16>(options_.port));
    // SO_REUSEADDR for quick restarts, but not SO_REUSEPORT: a second agent on the same port
    // must fail here, not silently share the port.
    impl_->socket.bind(address, /*reuseAddress=*/true, /*reusePort=*/false);
    impl_->socket.listen(1024);
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("cannot listen on " + options_.host + ":" +
                             std::to_string(options_.port) + " for " + options_.name + " (" +
                             e.displayText() +
                             "); is another process using the port? Choose another port");
  }
  impl_->port = impl_->socket.address().port();
  impl_->flow =
      std::make_unique<http_detail::RequestFlow>(options_, std::move(handler), std::move(observer));
  impl_->events = std::make_unique<http_detail::EventServer>(
      *impl_->flow, impl_->upgrade, impl_->socket.impl()->sockfd(), impl_->tls.get());
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::setUpgradeHandler(UpgradeHandler* handler) { impl_->upgrade = handler; }

void HttpServer::start() { impl_->events->start(); }

void HttpServer::stop() { impl_->events->stop(); }

int HttpServer::port() const { return impl_->port; }

}  // namespace bb
