// A connection's bytes, plain or TLS: what every loop of the reactor reads and writes, whatever
// the port serves. A TLS stream does its handshake in the loop like any other step (never a
// thread of its own). A Stream owns its socket: it moves from the HTTP side to a WebSocket client
// on an upgrade, TLS state included, and closes the socket when it goes.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <string>

namespace bb::net {

class TlsContext;
struct TlsApi;

class Stream {
 public:
  /// What read(), write() and handshake() return besides a byte count (> 0) or 0 (read: the peer
  /// closed).
  static constexpr long kWouldBlock = -1;  ///< nothing to do until the socket is ready
  static constexpr long kBroken = -2;      ///< the connection is broken: close it

  Stream() = default;
  /// A plain stream over the connected socket `fd` (owned).
  explicit Stream(int fd) : fd_(fd) {}
  /// A TLS stream over `fd` (owned) with `context`'s certificate; its handshake is still to do.
  /// Null tls() when OpenSSL could not make the stream (close it).
  Stream(int fd, const TlsContext& context);
  ~Stream() { close(); }
  Stream(Stream&& o) noexcept { *this = std::move(o); }
  Stream& operator=(Stream&& o) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  /// Whether bytes go through TLS.
  bool tls() const { return tls_ != nullptr; }
  /// Whether the TLS handshake is still to complete (never for a plain stream).
  bool handshaking() const { return tls_ && !handshaken_; }

  /// Drives the TLS handshake: 1 when complete (at once on a plain stream), kWouldBlock, kBroken.
  long handshake();
  /// Bytes (> 0), 0 when the peer closed, kWouldBlock or kBroken.
  long read(char* buf, size_t len);
  /// Bytes taken (> 0, maybe fewer), kWouldBlock or kBroken.
  long write(const char* data, size_t len);
  /// As write(), from `count` pieces in order (one sendmsg on a plain stream).
  long writev(const iovec* iov, size_t count);

  /// TLS: bytes read from the socket ahead (decrypted or not) that epoll cannot see, which the
  /// next read may return without waiting for the socket. Never after a read that wanted more.
  bool buffered() const;
  /// Whether bytes may be there to read at once after a read that returned `got` (> 0) of the
  /// `asked`: plain, when it filled the buffer (the socket may hold more); TLS, buffered(). Else
  /// the socket is drained, and the level-triggered epoll says when more comes.
  bool moreToRead(size_t got, size_t asked) const;
  /// The last read or handshake waits for the socket to take bytes (TLS): watch writability.
  bool readWantsWrite() const { return read_wants_write_; }
  /// The last write waits for bytes from the peer (TLS): watch readability.
  bool writeWantsRead() const { return write_wants_read_; }
  /// TLS record buffers (32.5 KiB a stream while it holds them; nothing on a plain stream). A
  /// stream keeps them between records, as a busy connection wants; releaseBuffers() gives them
  /// back when its connection idles (false while they hold bytes), and the next read or write
  /// takes them again. keepBuffers(false): freed after every record instead, for a connection that
  /// is mostly idle and seldom looked at (a WebSocket client).
  bool releaseBuffers();
  void keepBuffers(bool keep);

  /// Why the last TLS call failed (OpenSSL's words), for debug logs.
  std::string lastError() const;

  /// Ends the sending side (TLS: close_notify, then the stream is plain bytes to be dropped);
  /// what the peer still sends can be read (and dropped) with read().
  void shutdownWrite();
  /// Closes the socket (TLS: close_notify first if it can go without blocking). Idempotent.
  void close();

 private:
  int fd_ = -1;
  const TlsApi* api_ = nullptr;
  void* tls_ = nullptr;
  bool handshaken_ = false;
  bool starved_ = false;  // the last read or handshake wanted bytes the socket did not have
  bool read_wants_write_ = false;
  bool write_wants_read_ = false;
};

}  // namespace bb::net
