#include "ws/frame.h"

#include <cstring>

#include "util/utf8.h"

namespace bb::ws {
namespace {

bool isControl(Opcode op) { return (static_cast<uint8_t>(op) & 0x8) != 0; }

bool knownOpcode(uint8_t op) {
  return op == 0x0 || op == 0x1 || op == 0x2 || op == 0x8 || op == 0x9 || op == 0xA;
}

}  // namespace

std::string encodeFrame(Opcode op, std::string_view payload, uint32_t mask) {
  std::string out;
  size_t n = payload.size();
  out.reserve(n + 14);
  out.push_back(static_cast<char>(0x80 | static_cast<uint8_t>(op)));
  uint8_t mask_bit = mask != 0 ? 0x80 : 0;
  if (n < 126) {
    out.push_back(static_cast<char>(mask_bit | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>((n >> 8) & 0xFF));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((static_cast<uint64_t>(n) >> shift) & 0xFF));
  }
  if (mask == 0) {
    out.append(payload.data(), n);
    return out;
  }
  char key[4] = {static_cast<char>(mask >> 24), static_cast<char>(mask >> 16),
                 static_cast<char>(mask >> 8), static_cast<char>(mask)};
  out.append(key, 4);
  size_t start = out.size();
  out.append(payload.data(), n);
  for (size_t i = 0; i < n; ++i) out[start + i] ^= key[i & 3];
  return out;
}

std::string encodeClose(uint16_t code, std::string_view reason, uint32_t mask) {
  // A control frame carries at most 125 bytes: 2 for the code, 123 for the reason.
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason.substr(0, 123));
  return encodeFrame(Opcode::kClose, payload, mask);
}

std::string encodeText(std::string_view text) {
  if (isUtf8(text)) return encodeFrame(Opcode::kText, text);
  return encodeFrame(Opcode::kText, toUtf8(text));
}

bool validCloseCode(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

FrameDecoder::FrameDecoder(bool require_mask, size_t max_message_bytes)
    : require_mask_(require_mask), max_bytes_(max_message_bytes) {}

void FrameDecoder::feed(const char* data, size_t size) {
  if (failed_) return;
  // Compact once the consumed prefix dominates, so the buffer stays about one frame long.
  if (offset_ > 0 && offset_ >= buffer_.size() / 2) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(data, size);
}

FrameDecoder::Status FrameDecoder::fail(uint16_t code, std::string text) {
  failed_ = true;
  error_code_ = code;
  error_text_ = std::move(text);
  buffer_.clear();
  offset_ = 0;
  return Status::kError;
}

FrameDecoder::Status FrameDecoder::next(Message& out) {
  if (failed_) return Status::kError;
  for (;;) {
    size_t avail = buffer_.size() - offset_;
    if (avail < 2) return Status::kNeedMore;
    const auto* p = reinterpret_cast<const uint8_t*>(buffer_.data() + offset_);
    bool fin = (p[0] & 0x80) != 0;
    uint8_t raw_op = p[0] & 0x0F;
    // RSV1 is permessage-deflate's, on the first frame of a data message only (RFC 7692 6).
    const uint8_t rsv = p[0] & 0x70;
    const bool rsv1 = rsv == 0x40 && compressed_ok_;
    if (rsv != 0 && !rsv1) return fail(kCloseProtocolError, "reserved bits set (no extension)");
    if (!knownOpcode(raw_op)) return fail(kCloseProtocolError, "unknown opcode");
    auto op = static_cast<Opcode>(raw_op);
    if (rsv1 && (isControl(op) || op == Opcode::kContinuation))
      return fail(kCloseProtocolError, "RSV1 set on a control or continuation frame");
    bool masked = (p[1] & 0x80) != 0;
    if (require_mask_ && !masked) return fail(kCloseProtocolError, "client frame not masked");
    uint64_t len = p[1] & 0x7F;
    size_t header = 2;
    if (len == 126) {
      if (avail < 4) return Status::kNeedMore;
      len = (static_cast<uint64_t>(p[2]) << 8) | p[3];
      header = 4;
    } else if (len == 127) {
      if (avail < 10) return Status::kNeedMore;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
      header = 10;
    }
    if (isControl(op)) {
      if (!fin) return fail(kCloseProtocolError, "fragmented control frame");
      if (len > 125) return fail(kCloseProtocolError, "control frame over 125 bytes");
    }
    // Refuse before buffering: a peer announcing a huge frame must not make us store it.
    if (len > max_bytes_ || (!isControl(op) && fragments_.size() + len > max_bytes_))
      return fail(kCloseTooBig, "message over " + std::to_string(max_bytes_) + " bytes");
    size_t mask_len = masked ? 4 : 0;
    if (avail < header + mask_len + len) return Status::kNeedMore;
    std::string payload(buffer_.data() + offset_ + header + mask_len, static_cast<size_t>(len));
    if (masked) {
      const uint8_t* key = p + header;
      for (size_t i = 0; i < payload.size(); ++i) payload[i] ^= static_cast<char>(key[i & 3]);
    }
    offset_ += header + mask_len + static_cast<size_t>(len);
    if (offset_ == buffer_.size()) {
      buffer_.clear();
      offset_ = 0;
    }

    if (isControl(op)) {
      out.op = op;
      out.close_code = 0;
      out.compressed = false;
      if (op == Opcode::kClose) {
        if (payload.size() == 1) return fail(kCloseProtocolError, "close frame of 1 byte");
        out.close_code = payload.size() >= 2
                             ? static_cast<uint16_t>((static_cast<uint8_t>(payload[0]) << 8) |
                                                     static_cast<uint8_t>(payload[1]))
                             : 1005;
        if (payload.size() >= 2 && !validCloseCode(out.close_code))
          return fail(kCloseProtocolError, "invalid close code " + std::to_string(out.close_code));
        if (payload.size() > 2 && !isUtf8(std::string_view(payload).substr(2)))
          return fail(kCloseInvalidPayload, "close reason is not UTF-8");
      }
      out.payload = std::move(payload);
      return Status::kMessage;
    }
    if (op == Opcode::kContinuation) {
      if (!in_fragmented_) return fail(kCloseProtocolError, "continuation without a first frame");
      fragments_ += payload;
      if (!fin) continue;
      out.op = fragmented_op_;
      out.payload = std::move(fragments_);
      out.close_code = 0;
      out.compressed = fragmented_compressed_;
      fragments_.clear();
      in_fragmented_ = false;
      if (out.op == Opcode::kText && !out.compressed && !isUtf8(out.payload))
        return fail(kCloseInvalidPayload, "text message is not UTF-8");
      return Status::kMessage;
    }
    if (in_fragmented_) return fail(kCloseProtocolError, "new message inside a fragmented one");
    if (!fin) {
      in_fragmented_ = true;
      fragmented_op_ = op;
      fragmented_compressed_ = rsv1;
      fragments_ = std::move(payload);
      continue;
    }
    if (op == Opcode::kText && !rsv1 && !isUtf8(payload))
      return fail(kCloseInvalidPayload, "text message is not UTF-8");
    out.op = op;
    out.payload = std::move(payload);
    out.close_code = 0;
    out.compressed = rsv1;
    return Status::kMessage;
  }
}

}  // namespace bb::ws
