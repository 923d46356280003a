// TLS for the WebSocket event loop (ws.tls): non-blocking OpenSSL streams, one per connection,
// driven by the loop (WsServer). OpenSSL itself lives in the TLS module bb_tls.so, which the
// agent loads only when a listener has TLS (agent/http/tls_module.cc says why): this header is
// the table of functions the module exports for the loop (tls_stream_module.cc) and the loader
// (tls_stream.cc). The module and the agent are built together from one tree, so the table needs
// no versioning beyond its name.
#pragma once

#include <cstddef>

namespace bb::ws {

/// What handshake(), read() and write() return besides a byte count (> 0).
constexpr long kTlsClosed = 0;      ///< the peer closed the connection (close_notify or EOF)
constexpr long kTlsWantRead = -1;   ///< call again once the socket is readable
constexpr long kTlsWantWrite = -2;  ///< call again once the socket is writable
constexpr long kTlsError = -3;      ///< the stream is broken: close the connection

/// The functions of bb_tls.so for the event loop. Every call is made on the loop's thread. The
/// process must ignore SIGPIPE (the agent does): OpenSSL writes to the socket with write(2).
struct TlsStreamApi {
  /// A server context for a PEM certificate (chain, leaf first) and an unencrypted private
  /// key: TLS 1.2 minimum, no client certificates, no renegotiation. Null on failure, with a
  /// message in `error` (NUL-terminated, at most `error_size` bytes).
  void* (*server_context)(const char* cert_file, const char* key_file, char* error,
                          size_t error_size);
  void (*free_context)(void* context);
  /// A server-side stream over the connected non-blocking socket `fd` (not owned: the caller
  /// closes it after close()). Null on failure.
  void* (*open)(void* context, int fd);
  /// Sends close_notify if it can without blocking, then frees the stream.
  void (*close)(void* stream);
  /// Drives the handshake: 1 when complete, else kTlsWantRead, kTlsWantWrite or kTlsError.
  long (*handshake)(void* stream);
  /// Decrypted bytes (> 0), or kTlsClosed, kTlsWantRead, kTlsWantWrite, kTlsError.
  long (*read)(void* stream, void* buf, size_t len);
  /// Bytes taken (> 0, maybe fewer than `len`), or kTlsWantRead, kTlsWantWrite, kTlsError.
  /// After a kTlsWant*, call again with the same bytes first (the pointer may differ).
  long (*write)(void* stream, const void* buf, size_t len);
  /// Decrypted bytes already buffered in the stream, which epoll cannot see.
  int (*pending)(void* stream);
  /// Why the last call failed (OpenSSL's error queue of this thread, then cleared).
  void (*last_error)(char* buf, size_t size);
};

/// The module's table, loaded on first use from <exe dir>/../lib/blockbuster/bb_tls.so
/// (BLOCK_BUSTER_TLS_MODULE, a path, overrides it). Throws std::runtime_error naming the module
/// when it cannot be loaded. Thread-safe.
const TlsStreamApi& tlsStreamApi();

}  // namespace bb::ws

/// Exported by bb_tls.so.
extern "C" const bb::ws::TlsStreamApi* bb_tls_stream_api();
