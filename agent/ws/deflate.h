// permessage-deflate (RFC 7692) for the agent's WebSocket push. A stream message is compressed
// once and the same bytes go to every client that negotiated the extension, so the agent always
// answers with server_no_context_takeover (each message is a DEFLATE stream of its own, with no
// window carried over from the last one a client received) and client_no_context_takeover (a
// client's messages are inflated one at a time, so no client holds a 32 KiB window between
// messages). At 10 000 clients the bytes handed to the kernel, not the encoding, are what the
// loops spend their time on: docs/performance.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ws/frame.h"

namespace bb::ws {

/// The Sec-WebSocket-Extensions value to answer `offers` (the request's header of that name)
/// with: the first permessage-deflate offer the agent can honour, answered
/// "permessage-deflate; server_no_context_takeover; client_no_context_takeover"; nullopt when
/// there is none (no offer, or every offer asks for a server window under 2^15 or carries a
/// parameter that is unknown, repeated or out of range: RFC 7692 says to decline such an offer,
/// and the connection then goes uncompressed). Pure.
std::optional<std::string> negotiateDeflate(std::string_view offers);

/// Compresses messages, each a raw DEFLATE stream of its own. Not thread-safe; about 260 KiB
/// while it lives (zlib's state at window 2^15, memory level 8).
class Deflater {
 public:
  /// `level`: zlib's 1 (fastest) to 9 (smallest).
  explicit Deflater(int level = 6);
  ~Deflater();
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  /// `data` compressed as one permessage-deflate payload (flushed to a byte boundary, without
  /// the final 00 00 ff ff, RFC 7692 7.2.1).
  std::string compress(std::string_view data);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Inflates client messages one at a time (client_no_context_takeover). Not thread-safe: one per
/// loop, shared by its clients. Its 32 KiB window is allocated at the first message.
class Inflater {
 public:
  Inflater();
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  enum class Result { kOk, kTooBig, kInvalid };
  /// Inflates one permessage-deflate payload into `out`; kTooBig as soon as the output would
  /// exceed `max_bytes` (a small payload may inflate a thousandfold: the bound is checked as it
  /// grows, never after), kInvalid when it is not DEFLATE data.
  Result inflate(std::string_view payload, size_t max_bytes, std::string& out);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// A text frame of `text` (made UTF-8 as encodeText does) compressed with RSV1 set, or "" when
/// compression would not make the frame smaller (the plain frame is then sent: a connection
/// that negotiated the extension may still receive uncompressed messages).
std::string encodeDeflatedText(std::string_view text, Deflater& deflater);

/// Completes a message the decoder marked compressed (Message::compressed): inflates its
/// payload in place, at most `max_bytes`, and checks a text message is UTF-8. On failure, false
/// with the close code (1009 too big, 1007 not DEFLATE or not UTF-8) and the reason to send.
bool inflateMessage(Inflater& inflater, Message& message, size_t max_bytes, uint16_t& code,
                    std::string& reason);

}  // namespace bb::ws
