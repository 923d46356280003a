// RFC 6455 framing for the agent's non-blocking WebSocket loop: server frames are unmasked,
// client frames must be masked. Pure functions and a byte-fed decoder: no sockets, no threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bb::ws {

enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

/// Close codes the agent sends (RFC 6455 section 7.4.1).
enum CloseCode : uint16_t {
  kCloseNormal = 1000,
  kCloseGoingAway = 1001,
  kCloseProtocolError = 1002,
  kCloseUnsupportedData = 1003,
  kCloseInvalidPayload = 1007,
  kClosePolicy = 1008,
  kCloseTooBig = 1009,
  kCloseInternalError = 1011,
};

/// One complete, unfragmented frame with FIN set; `mask` non-zero masks it (client side).
/// Reentrant.
std::string encodeFrame(Opcode op, std::string_view payload, uint32_t mask = 0);
/// A close frame carrying `code` and a reason (truncated to fit a control frame). Reentrant.
std::string encodeClose(uint16_t code, std::string_view reason, uint32_t mask = 0);
/// A text frame of `text`, which must be UTF-8 (RFC 6455 5.6: a client closes on anything
/// else): bytes that are not are sent as U+FFFD. Reentrant.
std::string encodeText(std::string_view text);
/// Whether a peer may send `code` in a close frame (RFC 6455 7.4: 1000-1003, 1007-1014, and
/// 3000-4999 for libraries and applications).
bool validCloseCode(uint16_t code);

/// A message reassembled from one or more frames, or a control frame.
struct Message {
  Opcode op = Opcode::kText;  ///< kText, kBinary, kClose, kPing or kPong; never kContinuation
  std::string payload;        ///< unmasked; for kClose the 2-byte code and the reason
  uint16_t close_code = 0;    ///< kClose only; 1005 when the peer sent none
  /// A data message sent with RSV1 (permessage-deflate): `payload` is still compressed and not
  /// yet checked as UTF-8; inflateMessage() (ws/deflate.h) completes it.
  bool compressed = false;
};

/// Incremental decoder of the frames one peer sends. Feed it bytes as they arrive and take the
/// complete messages out. Not thread-safe: one decoder per connection, used by one thread.
class FrameDecoder {
 public:
  enum class Status {
    kNeedMore,  ///< no complete message yet
    kMessage,   ///< `out` holds a message
    kError,     ///< protocol violation: close with error_code() and stop reading
  };

  /// `require_mask`: frames must be masked (server side). `max_message_bytes` bounds one frame
  /// and one reassembled message; over it the decoder fails with kCloseTooBig.
  FrameDecoder(bool require_mask, size_t max_message_bytes);

  /// Lets the peer set RSV1 on the first frame of a data message (it negotiated
  /// permessage-deflate): such a message comes out with Message::compressed set. Off, RSV1 is
  /// a protocol error as every reserved bit is.
  void acceptCompressed(bool on) { compressed_ok_ = on; }

  /// Appends received bytes.
  void feed(const char* data, size_t size);
  /// Extracts the next complete message, if any. Control frames may arrive between the
  /// fragments of a data message and are returned at once.
  Status next(Message& out);

  uint16_t errorCode() const { return error_code_; }
  const std::string& errorText() const { return error_text_; }
  /// Bytes buffered and not yet consumed (for tests and accounting).
  size_t buffered() const { return buffer_.size() - offset_; }

 private:
  Status fail(uint16_t code, std::string text);

  bool require_mask_;
  size_t max_bytes_;
  std::string buffer_;
  size_t offset_ = 0;
  bool compressed_ok_ = false;
  bool in_fragmented_ = false;
  Opcode fragmented_op_ = Opcode::kText;
  bool fragmented_compressed_ = false;
  std::string fragments_;
  uint16_t error_code_ = 0;
  std::string error_text_;
  bool failed_ = false;
};

}  // namespace bb::ws
