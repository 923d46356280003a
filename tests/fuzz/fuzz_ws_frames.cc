// Fuzz target: the WebSocket frame decoder (server side: client frames must be masked) and the
// handling of client messages, on any bytes a client can send, fed in pieces of any size. Checks
// that a text message handed on is UTF-8, that a close code handed on is one a peer may send,
// that what the agent would send back is a UTF-8 text frame, and that nothing buffers more than
// the message limit.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/utf8.h"
#include "ws/frame.h"
#include "ws/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  constexpr size_t kMax = 4096;
  bb::ws::FrameDecoder decoder(true, kMax);
  // The first byte chooses the piece size, so frames split anywhere.
  const size_t piece = 1 + data[0] % 64;
  for (size_t off = 1; off < size; off += piece) {
    const size_t n = std::min(piece, size - off);
    decoder.feed(reinterpret_cast<const char*>(data + off), n);
    bb::ws::Message m;
    for (;;) {
      const auto st = decoder.next(m);
      if (st != bb::ws::FrameDecoder::Status::kMessage) break;
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
