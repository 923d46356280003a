#include "ws/deflate.h"

#include <zlib.h>

#include <cctype>
#include <stdexcept>
#include <vector>

#include "util/utf8.h"

namespace bb::ws {
namespace {

constexpr int kWindowBits = 15;  // what the agent compresses with, and inflates with
constexpr char kTrailer[] = {'\x00', '\x00', '\xff', '\xff'};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// A window-bits value, 8 to 15 (RFC 7692 7.1.2: 1*DIGIT, possibly quoted).
bool windowBits(std::string_view v, int& out) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty() || v.size() > 2) return false;
  out = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return out >= 8 && out <= 15;
}

// Whether one offer ("permessage-deflate; p1; p2=v") is one the agent accepts.
bool acceptable(std::string_view offer) {
  size_t semi = offer.find(';');
  if (!iequals(trim(offer.substr(0, semi)), "permessage-deflate")) return false;
  bool seen[4] = {false, false, false, false};
  while (semi != std::string_view::npos) {
    offer.remove_prefix(semi + 1);
    semi = offer.find(';');
    std::string_view param = trim(offer.substr(0, semi));
    size_t eq = param.find('=');
    std::string_view name = trim(param.substr(0, eq));
    std::optional<std::string_view> value;
    if (eq != std::string_view::npos) value = trim(param.substr(eq + 1));
    int index = -1, bits = 0;
    if (iequals(name, "server_no_context_takeover") ||
        iequals(name, "client_no_context_takeover")) {
      if (value) return false;  // takes no value
      index = iequals(name, "server_no_context_takeover") ? 0 : 1;
    } else if (iequals(name, "server_max_window_bits")) {
      // Messages are compressed once for every client, at 2^15: a smaller window is declined.
      if (!value || !windowBits(*value, bits) || bits != kWindowBits) return false;
      index = 2;
    } else if (iequals(name, "client_max_window_bits")) {
      // Any window the client uses inflates with ours (2^15); the answer need not name it.
      if (value && !windowBits(*value, bits)) return false;
      index = 3;
    } else {
      return false;  // unknown parameter
    }
    if (seen[index]) return false;  // repeated
    seen[index] = true;
  }
  return true;
}

}  // namespace

std::optional<std::string> negotiateDeflate(std::string_view offers) {
  // Offers are comma-separated, in the client's order of preference; no parameter value the
  // extension defines holds a comma.
  while (!offers.empty()) {
    size_t comma = offers.find(',');
    if (acceptable(offers.substr(0, comma)))
      return std::string(
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    if (comma == std::string_view::npos) break;
    offers.remove_prefix(comma + 1);
  }
  return std::nullopt;
}

struct Deflater::State {
  z_stream z{};
};

Deflater::Deflater(int level) : state_(std::make_unique<State>()) {
  if (deflateInit2(&state_->z, level, Z_DEFLATED, -kWindowBits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("zlib: deflateInit2 failed (out of memory?)");
}

Deflater::~Deflater() { deflateEnd(&state_->z); }

std::string Deflater::compress(std::string_view data) {
  z_stream& z = state_->z;
  deflateReset(&z);  // no context takeover: every message stands alone
  std::string out;
  out.resize(deflateBound(&z, static_cast<uLong>(data.size())) + 16);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  size_t used = 0;
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(&out[used]);
    z.avail_out = static_cast<uInt>(out.size() - used);
    int rc = deflate(&z, Z_SYNC_FLUSH);
    used = out.size() - z.avail_out;
    if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("zlib: deflate failed");
    // Done when the input is used up and the flush fitted (room left over).
    if (z.avail_in == 0 && z.avail_out > 0) break;
    out.resize(out.size() * 2);
  }
  out.resize(used);
  // A sync flush ends with an empty stored block, 00 00 ff ff: the receiver appends it back.
  if (out.size() >= 4 && out.compare(out.size() - 4, 4, kTrailer, 4) == 0)
    out.resize(out.size() - 4);
  return out;
}

struct Inflater::State {
  z_stream z{};
  bool ready = false;
};

Inflater::Inflater() : state_(std::make_unique<State>()) {}

Inflater::~Inflater() {
  if (state_->ready) inflateEnd(&state_->z);
}

Inflater::Result Inflater::inflate(std::string_view payload, size_t max_bytes, std::string& out) {
  z_stream& z = state_->z;
  if (!state_->ready) {
    if (inflateInit2(&z, -kWindowBits) != Z_OK)
      throw std::runtime_error("zlib: inflateInit2 failed (out of memory?)");
    state_->ready = true;
  } else {
    inflateReset(&z);
  }
  out.clear();
  char chunk[16 * 1024];
  // The payload, then the trailer the sender took off.
  const std::string_view parts[2] = {payload, std::string_view(kTrailer, 4)};
  for (const auto& part : parts) {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(part.data()));
    z.avail_in = static_cast<uInt>(part.size());
    for (;;) {
      z.next_out = reinterpret_cast<Bytef*>(chunk);
      z.avail_out = sizeof chunk;
      int rc = ::inflate(&z, Z_SYNC_FLUSH);
      const size_t got = sizeof chunk - z.avail_out;
      if (rc == Z_NEED_DICT || rc == Z_DATA_ERROR || rc == Z_MEM_ERROR) return Result::kInvalid;
      if (got > max_bytes - out.size()) return Result::kTooBig;
      out.append(chunk, got);
      // A final block (BFINAL) ends the stream; RFC 7692 7.2.3.3 lets a sender use one. What
      // follows it, the trailer included, is not data.
      if (rc == Z_STREAM_END) return Result::kOk;
      // This part is used up and its output all out (room was left): on to the next.
      if (z.avail_in == 0 && z.avail_out > 0) break;
      if (rc == Z_BUF_ERROR && got == 0) return Result::kInvalid;  // stuck: not DEFLATE data
    }
  }
  return Result::kOk;
}

std::string encodeDeflatedText(std::string_view text, Deflater& deflater) {
  std::string z = isUtf8(text) ? deflater.compress(text) : deflater.compress(toUtf8(text));
  std::string frame = encodeFrame(Opcode::kText, z);
  if (frame.size() >= text.size() + 2) return {};  // no smaller than the plain frame's floor
  frame[0] = static_cast<char>(frame[0] | 0x40);   // RSV1: "Per-Message Compressed"
  return frame;
}

bool inflateMessage(Inflater& inflater, Message& message, size_t max_bytes, uint16_t& code,
                    std::string& reason) {
  std::string plain;
  switch (inflater.inflate(message.payload, max_bytes, plain)) {
    case Inflater::Result::kTooBig:
      code = kCloseTooBig;
      reason = "message over " + std::to_string(max_bytes) + " bytes once inflated";
      return false;
    case Inflater::Result::kInvalid:
      code = kCloseInvalidPayload;
      reason = "compressed message is not DEFLATE data";
      return false;
    case Inflater::Result::kOk:
      break;
  }
  if (message.op == Opcode::kText && !isUtf8(plain)) {
    code = kCloseInvalidPayload;
    reason = "text message is not UTF-8";
    return false;
  }
  message.payload = std::move(plain);
  message.compressed = false;
  return true;
}

}  // namespace bb::ws
