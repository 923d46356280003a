// bb_tls.so: the agent's server-side TLS, in a module of its own that the agent loads (dlopen)
// only when a listener has TLS (net/tls.h says why). The non-blocking OpenSSL streams of the
// reactor's loops, HTTPS and wss:// alike. OpenSSL directly, not Poco NetSSL: Poco's secure
// socket keeps its OpenSSL state to itself and blocks in its handshake, while a loop needs
// SSL_ERROR_WANT_READ/WANT_WRITE to drive thousands of connections from one thread.
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "net/tls.h"

namespace {

using bb::net::kTlsClosed;
using bb::net::kTlsError;
using bb::net::kTlsWantRead;
using bb::net::kTlsWantWrite;

void errorText(char* buf, size_t size) {
  if (!buf || size == 0) return;
  std::string text;
  char one[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, one, sizeof one);
    if (!text.empty()) text += "; ";
    text += one;
  }
  if (text.empty()) text = errno ? std::strerror(errno) : "no detail from OpenSSL";
  std::snprintf(buf, size, "%s", text.c_str());
}

// An encrypted key would make OpenSSL ask for its passphrase on the terminal: refuse instead.
int noPassphrase(char*, int, int, void*) { return 0; }

void* serverContext(const char* cert_file, const char* key_file, char* error, size_t error_size) {
  OPENSSL_init_ssl(0, nullptr);
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  auto fail = [&](const char* what) -> void* {
    char detail[512];
    errorText(detail, sizeof detail);
    std::snprintf(error, error_size, "%s: %s", what, detail);
    if (ctx) SSL_CTX_free(ctx);
    return nullptr;
  };
  if (!ctx) return fail("cannot create a TLS context");
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
    return fail("cannot require TLS 1.2 or later");
  auto options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE;
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  // A peer that closes without close_notify is a peer that closed (the WebSocket protocol
  // has its own close): not a protocol error.
  options |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
  SSL_CTX_set_options(ctx, options);
  // Writes behave like send(): part of the bytes may be taken, and a retry after WANT_WRITE may
  // come from another buffer with the same bytes. A stream keeps its record buffers between
  // records (no SSL_MODE_RELEASE_BUFFERS here): freeing and allocating 32.5 KiB around every record
  // of a busy keep-alive connection costs more than the record. The loops give them back when a
  // connection idles (releaseBuffers) or frees them after every record on a stream that is mostly
  // idle (keepBuffers, a WebSocket client).
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read-ahead: one read(2) takes a whole record (and whatever follows it) instead of one for
  // its 5-byte header and one for its body. What it buffers beyond the record is reported by
  // pendingBytes (SSL_has_pending), which the loops watch as epoll cannot.
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_passwd_cb(ctx, noPassphrase);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
    return fail("cannot read the certificate");
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
    return fail("cannot read the private key (PEM, unencrypted)");
  if (SSL_CTX_check_private_key(ctx) != 1)
    return fail("the private key does not match the certificate");
  return ctx;
}

void freeContext(void* context) { SSL_CTX_free(static_cast<SSL_CTX*>(context)); }

void* openStream(void* context, int fd) {
  SSL* ssl = SSL_new(static_cast<SSL_CTX*>(context));
  if (!ssl) return nullptr;
  if (SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

void closeStream(void* stream) {
  SSL* ssl = static_cast<SSL*>(stream);
  ERR_clear_error();
  // Only a stream whose handshake completed and that did not fail may say close_notify; the
  // socket is non-blocking, so this never waits for the peer's answer.
  if (SSL_is_init_finished(ssl) && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN)) SSL_shutdown(ssl);
  ERR_clear_error();
  SSL_free(ssl);
}

// Maps the result `r` of an SSL_* call to the loop's codes.
long result(SSL* ssl, int r) {
  switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
      return kTlsWantRead;
    case SSL_ERROR_WANT_WRITE:
      return kTlsWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return kTlsClosed;
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return kTlsWantRead;
      // Without a close_notify and without a system error: the peer closed (OpenSSL 1.1).
      if (ERR_peek_error() == 0 && errno == 0) return kTlsClosed;
      // Once a fatal error happened no close_notify may follow.
      SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN);
      return kTlsError;
    default:
      SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN);
      return kTlsError;
  }
}

long handshakeStream(void* stream) {
  SSL* ssl = static_cast<SSL*>(stream);
  ERR_clear_error();
  errno = 0;
  int r = SSL_do_handshake(ssl);
  if (r == 1) return 1;
  long code = result(ssl, r);
  return code == kTlsClosed ? kTlsError : code;  // a peer gone mid-handshake is a failure
}

long readStream(void* stream, void* buf, size_t len) {
  SSL* ssl = static_cast<SSL*>(stream);
  ERR_clear_error();
  errno = 0;
  size_t got = 0;
  int r = SSL_read_ex(ssl, buf, len, &got);
  if (r == 1) return static_cast<long>(got);
  return result(ssl, r);
}

long writeStream(void* stream, const void* buf, size_t len) {
  SSL* ssl = static_cast<SSL*>(stream);
  ERR_clear_error();
  errno = 0;
  size_t put = 0;
  int r = SSL_write_ex(ssl, buf, len, &put);
  if (r == 1) return static_cast<long>(put);
  long code = result(ssl, r);
  return code == kTlsClosed ? kTlsError : code;  // cannot write to a closed stream
}

// Decrypted bytes, or bytes read ahead and not yet decrypted (perhaps only part of a record).
int pendingBytes(void* stream) { return SSL_has_pending(static_cast<SSL*>(stream)); }

void keepBuffers(void* stream, int keep) {
  SSL* ssl = static_cast<SSL*>(stream);
  if (keep)
    SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
  else
    SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
}

// SSL_free_buffers refuses (0) while a buffer holds bytes: read ahead, or not yet written.
int releaseBuffers(void* stream) { return SSL_free_buffers(static_cast<SSL*>(stream)); }

const bb::net::TlsApi kApi{serverContext,   freeContext,    openStream,  closeStream,
                           handshakeStream, readStream,     writeStream, pendingBytes,
                           keepBuffers,     releaseBuffers, errorText};

}  // namespace

extern "C" __attribute__((visibility("default"))) const bb::net::TlsApi* bb_tls_stream_api() {
  return &kApi;
}
