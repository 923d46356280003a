// Fuzz target: the WebSocket frame decoder (server side: client frames must be masked) and the
// handling of client messages, on any bytes a client can send, fed in pieces of any size. Checks
// that a text message handed on is UTF-8, that a close code handed on is one a peer may send,
// that what the agent would send back is a UTF-8 text frame, and that nothing buffers more than
// the message limit. Half the inputs negotiate permessage-deflate: a compressed message is
// inflated as the agent does (ws/deflate.h), and must then be within the limit and UTF-8 too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/utf8.h"
#include "ws/deflate.h"
#include "ws/frame.h"
#include "ws/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  constexpr size_t kMax = 4096;
  bb::ws::FrameDecoder decoder(true, kMax);
  // The first byte chooses the piece size, so frames split anywhere, and its top bit whether
  // the client negotiated compression.
  const size_t piece = 1 + data[0] % 64;
  decoder.acceptCompressed((data[0] & 0x80) != 0);
  bb::ws::Inflater inflater;
  for (size_t off = 1; off < size; off += piece) {
    const size_t n = std::min(piece, size - off);
    decoder.feed(reinterpret_cast<const char*>(data + off), n);
    bb::ws::Message m;
    for (;;) {
      const auto st = decoder.next(m);
      if (st != bb::ws::FrameDecoder::Status::kMessage) break;
      if (m.compressed) {
        if (!(data[0] & 0x80)) __builtin_trap();  // RSV1 without the extension got through
        uint16_t code = 0;
        std::string reason;
        if (!bb::ws::inflateMessage(inflater, m, kMax, code, reason)) {
          if (code != bb::ws::kCloseTooBig && code != bb::ws::kCloseInvalidPayload)
            __builtin_trap();
          continue;  // the agent closes the connection
        }
      }
      if (m.payload.size() > kMax) __builtin_trap();
      if (m.op == bb::ws::Opcode::kClose && m.close_code != 1005 &&
          !bb::ws::validCloseCode(m.close_code))
        __builtin_trap();
      if (m.op != bb::ws::Opcode::kText) continue;
      if (!bb::isUtf8(m.payload)) __builtin_trap();
      const auto request = bb::ws::parseClientRequest(m.payload, true);
      const std::string reply = bb::ws::encodeText(
          bb::ws::controlMessage("error", "", "{\"message\":\"" + request.error + "\"}", 0));
      // The frame's payload (after a 2-, 4- or 10-byte header, unmasked) must be UTF-8.
      const uint8_t len7 = static_cast<uint8_t>(reply[1]) & 0x7f;
      const size_t header = len7 < 126 ? 2 : len7 == 126 ? 4 : 10;
      if (!bb::isUtf8(std::string_view(reply).substr(header))) __builtin_trap();
    }
    if (decoder.buffered() > kMax + 14 + piece) __builtin_trap();
  }
  return 0;
}
