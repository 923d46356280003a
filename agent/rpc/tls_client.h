// The client side of TLS for the RPC client (https:// node URLs). Poco NetSSL and OpenSSL stay in
// the TLS module bb_tls.so (agent/http/tls_module.cc), loaded only when rpc_url is https, so an
// agent polling a plain-HTTP node never maps them (docs/performance.md, "Footprint"). The agent
// and the module are built together from one tree: C++ types at this boundary are safe. OpenSSL
// writes with write(2): the process must ignore SIGPIPE (the agent does).
#pragma once

#include <functional>
#include <memory>
#include <string>

namespace Poco::Net {
class StreamSocketImpl;
}

namespace bb {

/// Poco::Exception::code() of a Poco::Net::NetException thrown by a TLS socket when the node's
/// certificate is not trusted (chain or host name): a setting to fix, never retried.
constexpr int kTlsUntrustedCode = 0x5442'0001;

struct TlsClientApi {
  /// A client context that verifies the peer (chain and host name, loopback included) against
  /// the PEM CA file `ca_file`, or against the system's store when it is empty. TLS 1.2 and
  /// later. Null with `error` set when the file cannot be used.
  std::shared_ptr<void> (*context)(const std::string& ca_file, std::string& error);
  /// A TLS socket over `plain` (taken over: it is released with the result). connect() makes the
  /// TCP connection through `plain` and the handshake; every read, write and the handshake wait
  /// through `wait(Poco::Net::Socket::SELECT_READ or SELECT_WRITE)`, which throws
  /// Poco::TimeoutException at the caller's deadline. `peer_host` is sent as SNI and checked
  /// against the certificate.
  Poco::Net::StreamSocketImpl* (*socket)(const std::shared_ptr<void>& context,
                                         Poco::Net::StreamSocketImpl* plain,
                                         const std::string& peer_host,
                                         std::function<void(int mode)> wait);
};

/// The module's client API; throws std::runtime_error naming the module when it cannot be loaded.
const TlsClientApi& tlsClientApi();

}  // namespace bb

extern "C" const bb::TlsClientApi* bb_tls_client_api();
