// TLS for the reactor's streams: non-blocking OpenSSL, one stream per connection, driven by the
// loops (net/stream.h). OpenSSL itself lives in the TLS module bb_tls.so, which the agent loads
// (dlopen) only when a listener has TLS, so that an agent without TLS maps none of it (1.5 MiB
// more RSS at idle, measured with libssl preloaded). This header is the table of functions the
// module exports (net/tls_module.cc), the loader, and TlsContext: the one place a listener's
// certificate and key become a server context. The module and the agent are built together from
// one tree, so the table needs no versioning beyond its name.
#pragma once

#include <cstddef>
#include <mutex>
#include <stdexcept>
#include <string>

namespace bb {

/// A function of the TLS module bb_tls.so, which holds every use of OpenSSL and is loaded on
/// first use from beside the running program (<exe dir>/../lib/blockbuster/, in the build tree as
/// installed; BLOCK_BUSTER_TLS_MODULE, a path, overrides it). Null when the module or the symbol
/// cannot be loaded, with `error` saying which and what to do. Thread-safe.
void* tlsModuleSymbol(const char* symbol, std::string& error);

/// The table of functions that the module's `symbol` (`const Api* symbol()`) returns, loaded on
/// first use; throws std::runtime_error saying why (tlsModuleSymbol's error) when it cannot be.
template <class Api>
const Api& tlsModuleApi(const char* symbol) {
  static std::mutex mutex;
  static const Api* api = nullptr;
  static std::string error;
  std::lock_guard<std::mutex> lock(mutex);
  if (!api && error.empty()) {
    using Get = const Api* (*)();
    if (auto get = reinterpret_cast<Get>(tlsModuleSymbol(symbol, error))) api = get();
  }
  if (!api) throw std::runtime_error(error);
  return *api;
}

namespace net {

/// What handshake(), read() and write() return besides a byte count (> 0).
constexpr long kTlsClosed = 0;      ///< the peer closed the connection (close_notify or EOF)
constexpr long kTlsWantRead = -1;   ///< call again once the socket is readable
constexpr long kTlsWantWrite = -2;  ///< call again once the socket is writable
constexpr long kTlsError = -3;      ///< the stream is broken: close the connection

/// The functions of bb_tls.so for the loops. A stream is used by one thread at a time. The
/// process must ignore SIGPIPE (the agent does): OpenSSL writes to the socket with write(2).
struct TlsApi {
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
  /// After a kTlsWant*, call again with the same bytes first (the pointer may differ, and more
  /// bytes may follow them).
  long (*write)(void* stream, const void* buf, size_t len);
  /// Non-zero when the stream holds bytes read from the socket that epoll cannot see: decrypted
  /// or read ahead (perhaps only part of a record, so a read may still want more).
  int (*pending)(void* stream);
  /// keep != 0 (from open()): OpenSSL keeps the stream's record buffers (32.5 KiB, one to read a
  /// record and one to write) between records. 0: it frees them after each record and allocates
  /// them again for the next (cheaper to hold, dearer per record).
  void (*keep_buffers)(void* stream, int keep);
  /// Frees the record buffers now unless they hold bytes (read ahead, or not yet written): 1
  /// when freed. The next read or write allocates them again.
  int (*release_buffers)(void* stream);
  /// Why the last call failed (OpenSSL's error queue of this thread, then cleared).
  void (*last_error)(char* buf, size_t size);
};

/// The module's table, loaded on first use. Throws std::runtime_error naming the module when it
/// cannot be loaded. Thread-safe.
const TlsApi& tlsApi();

/// A listener's server context (SSL_CTX): the one TLS setup of the agent, for HTTPS and wss://
/// alike. Loads the module on first use.
class TlsContext {
 public:
  /// Throws std::runtime_error: "<name>: the TLS module ... cannot be loaded ..." when the module
  /// cannot be loaded; "<config_key or name>: cannot load the TLS certificate C and key K ..."
  /// for files OpenSSL refuses.
  TlsContext(const std::string& cert_file, const std::string& key_file, const std::string& name,
             const std::string& config_key = "");
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  const TlsApi& api() const { return *api_; }
  /// A new server-side stream over `fd` (not owned), or null.
  void* open(int fd) const { return api_->open(context_, fd); }

 private:
  const TlsApi* api_ = nullptr;
  void* context_ = nullptr;
};

}  // namespace net
}  // namespace bb

/// Exported by bb_tls.so.
extern "C" const bb::net::TlsApi* bb_tls_stream_api();
