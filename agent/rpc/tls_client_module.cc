// Part of the TLS module bb_tls.so: the client side of https:// node URLs (tls_client.h).
//
// The socket drives OpenSSL non-blocking and waits through the RPC client's own wait, so the
// handshake, every read and every write end by the exchange's deadline or at shutdown, as over
// plain HTTP (a node that sends its handshake one byte at a time cannot hold a call). Poco's
// SSLManager is not used: its default client context reads an application config and may install
// a certificate handler that accepts or prompts; this context always verifies.
#include <Poco/Net/Context.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/SecureStreamSocketImpl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <utility>

#include "rpc/tls_client.h"

namespace {

using Poco::Net::SecureStreamSocket;

// Why OpenSSL refused the peer's chain, on the thread doing the handshake.
thread_local std::string t_verify_error;

int verifyCallback(int ok, X509_STORE_CTX* store) {
  if (!ok && t_verify_error.empty()) {
    const int err = X509_STORE_CTX_get_error(store);
    t_verify_error = X509_verify_cert_error_string(err);
    if (X509* cert = X509_STORE_CTX_get_current_cert(store)) {
      char subject[256];
      X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
      t_verify_error += std::string(" (certificate ") + subject + ")";
    }
  }
  return ok;
}

class RpcTlsSocketImpl : public Poco::Net::SecureStreamSocketImpl {
 public:
  RpcTlsSocketImpl(Poco::Net::StreamSocketImpl* plain, Poco::Net::Context::Ptr context,
                   const std::string& peer_host, std::function<void(int)> wait)
      : SecureStreamSocketImpl(plain, std::move(context)), plain_(plain), wait_(std::move(wait)) {
    plain->release();  // the base took a reference of its own
    setPeerHostName(peer_host);
    setLazyHandshake(true);  // connect() below does it, bounded by wait_
  }

  void connect(const Poco::Net::SocketAddress& address, const Poco::Timespan& timeout) override {
    SecureStreamSocketImpl::connect(address, timeout);  // TCP through plain_, no handshake yet
    plain_->setBlocking(false);
    t_verify_error.clear();
    try {
      if (waitFor([&] { return completeHandshake(); }) != 1)
        throw Poco::Net::SSLConnectionUnexpectedlyClosedException("during the TLS handshake");
      verifyPeerCertificate();  // the host name (the chain was checked by OpenSSL)
    } catch (const Poco::Net::CertificateValidationException& e) {
      throw Poco::Net::NetException(
          "its certificate does not name the URL's host (" + e.displayText() + ")",
          bb::kTlsUntrustedCode);
    } catch (const Poco::Net::SSLConnectionUnexpectedlyClosedException&) {
      throw Poco::Net::ConnectionResetException("closed during the TLS handshake");
    } catch (const Poco::Net::SSLException& e) {
      if (!t_verify_error.empty()) {
        throw Poco::Net::NetException("its certificate is not trusted: " + t_verify_error,
                                      bb::kTlsUntrustedCode);
      }
      throw Poco::Net::NetException("TLS handshake failed (" + e.message() + ")");
    }
  }

  int sendBytes(const void* buffer, int length, int flags) override {
    return guarded([&] { return SecureStreamSocketImpl::sendBytes(buffer, length, flags); });
  }
  int receiveBytes(void* buffer, int length, int flags) override {
    return guarded([&] { return SecureStreamSocketImpl::receiveBytes(buffer, length, flags); });
  }

 private:
  // Retries `step` while OpenSSL wants the socket, waiting for it through wait_.
  template <class Step>
  int waitFor(Step step) {
    for (;;) {
      const int n = step();
      if (n == SecureStreamSocket::ERR_SSL_WANT_READ) {
        wait_(SELECT_READ | SELECT_ERROR);
      } else if (n == SecureStreamSocket::ERR_SSL_WANT_WRITE) {
        wait_(SELECT_WRITE | SELECT_ERROR);
      } else {
        return n;
      }
    }
  }
  // As waitFor, with OpenSSL's exceptions turned into the ones the RPC client knows.
  template <class Step>
  int guarded(Step step) {
    try {
      return waitFor(step);
    } catch (const Poco::Net::SSLConnectionUnexpectedlyClosedException&) {
      throw Poco::Net::ConnectionResetException("the TLS connection was closed");
    } catch (const Poco::Net::SSLException& e) {
      throw Poco::Net::NetException("TLS error (" + e.message() + ")");
    }
  }

  Poco::Net::StreamSocketImpl* plain_;  // owned by the base
  std::function<void(int)> wait_;
};

std::shared_ptr<void> makeContext(const std::string& ca_file, std::string& error) {
  static std::once_flag ssl_once;
  std::call_once(ssl_once, [] { Poco::Net::initializeSSL(); });
  try {
    Poco::Net::Context::Params params;
    params.caLocation = ca_file;
    params.loadDefaultCAs = ca_file.empty();
    // STRICT: the host name is checked for loopback hosts too (RELAXED skips them).
    params.verificationMode = Poco::Net::Context::VERIFY_STRICT;
    Poco::Net::Context::Ptr context =
        new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
    context->disableProtocols(Poco::Net::Context::PROTO_SSLV2 | Poco::Net::Context::PROTO_SSLV3 |
                              Poco::Net::Context::PROTO_TLSV1 | Poco::Net::Context::PROTO_TLSV1_1);
    SSL_CTX_set_verify(context->sslContext(), SSL_VERIFY_PEER, verifyCallback);
    return std::make_shared<Poco::Net::Context::Ptr>(context);
  } catch (const Poco::Exception& e) {
    error = e.displayText();
    return nullptr;
  }
}

Poco::Net::StreamSocketImpl* makeSocket(const std::shared_ptr<void>& context,
                                        Poco::Net::StreamSocketImpl* plain,
                                        const std::string& peer_host,
                                        std::function<void(int)> wait) {
  return new RpcTlsSocketImpl(plain, *static_cast<const Poco::Net::Context::Ptr*>(context.get()),
                              peer_host, std::move(wait));
}

const bb::TlsClientApi kApi{makeContext, makeSocket};

}  // namespace

extern "C" __attribute__((visibility("default"))) const bb::TlsClientApi* bb_tls_client_api() {
  return &kApi;
}
