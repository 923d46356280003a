// permessage-deflate (RFC 7692): the negotiation of the offer, the compressor and inflater, and
// the frame decoder's RSV1 rules. Payloads are checked against zlib itself, not against our own
// code only: what the agent compresses must inflate with a plain raw inflater, and what a client
// compresses with plain zlib (as browsers do) must inflate with ours.
#include "ws/deflate.h"

#include <gtest/gtest.h>

#include <string>

#include "raw_deflate.h"
#include "ws/frame.h"

using namespace bb::ws;
using bbtest::rawDeflate;
using bbtest::rawInflate;

namespace {

const char* kAccepted =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

// A masked frame as a client sends it, with the given first byte (FIN, RSV, opcode).
std::string clientFrame(uint8_t byte0, const std::string& payload) {
  std::string f = encodeFrame(Opcode::kText, payload, 0x11223344);
  f[0] = static_cast<char>(byte0);
  return f;
}

// `m`, marked compressed by the decoder, completed as the agent does (at most `max` bytes); the
// test fails with the reason when that fails.
std::string completed(Message& m, size_t max) {
  Inflater in;
  uint16_t code = 0;
  std::string reason;
  EXPECT_TRUE(inflateMessage(in, m, max, code, reason)) << reason;
  return m.payload;
}

// A JSON-like text that compresses well, as the streams' messages do.
std::string sample(size_t rows) {
  std::string s = "{\"type\":\"update\",\"stream\":\"operations\",\"data\":[";
  for (size_t i = 0; i < rows; ++i)
    s += (i ? "," : "") + std::string("{\"market\":\"compute\",\"id\":") + std::to_string(i) +
         ",\"status\":\"settled\",\"amount\":\"" + std::to_string(i * 7919 % 100003) + "\"}";
  return s + "]}";
}

}  // namespace

TEST(DeflateNegotiation, AcceptsWhatBrowsersOffer) {
  // Chromium and Firefox offer exactly this.
  EXPECT_EQ(negotiateDeflate("permessage-deflate; client_max_window_bits"), kAccepted);
  EXPECT_EQ(negotiateDeflate("permessage-deflate"), kAccepted);
  EXPECT_EQ(negotiateDeflate("Permessage-Deflate ;Client_No_Context_Takeover"), kAccepted);
  EXPECT_EQ(negotiateDeflate("permessage-deflate; server_no_context_takeover; "
                             "client_no_context_takeover; client_max_window_bits=10; "
                             "server_max_window_bits=15"),
            kAccepted);
  EXPECT_EQ(negotiateDeflate("permessage-deflate; client_max_window_bits=\"12\""), kAccepted);
}

TEST(DeflateNegotiation, DeclinesWhatItCannotHonourAndTakesTheNextOffer) {
  EXPECT_FALSE(negotiateDeflate(""));
  EXPECT_FALSE(negotiateDeflate("x-webkit-deflate-frame"));
  // Messages are compressed once for all clients with a 2^15 window: a smaller one is declined.
  EXPECT_FALSE(negotiateDeflate("permessage-deflate; server_max_window_bits=10"));
  EXPECT_FALSE(negotiateDeflate("permessage-deflate; server_max_window_bits"));  // needs a value
  EXPECT_FALSE(negotiateDeflate("permessage-deflate; client_max_window_bits=16"));
  EXPECT_FALSE(negotiateDeflate("permessage-deflate; client_max_window_bits=7"));
  EXPECT_FALSE(negotiateDeflate("permessage-deflate; server_no_context_takeover=1"));
  EXPECT_FALSE(negotiateDeflate("permessage-deflate; mystery"));
  EXPECT_FALSE(negotiateDeflate(
      "permessage-deflate; client_no_context_takeover; client_no_context_takeover"));
  // The first offer is declined, the second (the fallback a client lists) taken.
  EXPECT_EQ(negotiateDeflate("permessage-deflate; server_max_window_bits=10, "
                             "permessage-deflate; client_max_window_bits"),
            kAccepted);
  EXPECT_EQ(negotiateDeflate("foo, permessage-deflate"), kAccepted);
}

TEST(Deflater, EachMessageInflatesAloneWithZlib) {
  Deflater d;
  const std::string a = sample(200), b = sample(201);
  std::string za = d.compress(a);
  std::string zb = d.compress(b);
  EXPECT_LT(za.size() * 3, a.size()) << "JSON of this kind compresses at least 3x";
  // No context takeover: each payload stands alone, in any order, with a fresh inflater.
  EXPECT_EQ(rawInflate(zb), b);
  EXPECT_EQ(rawInflate(za), a);
  // The same input gives the same bytes: one compressed frame serves every client.
  EXPECT_EQ(d.compress(a), za);
  EXPECT_EQ(rawInflate(d.compress("")), "");
}

TEST(Deflater, FrameHasRsv1AndFallsBackWhenNotSmaller) {
  Deflater d;
  const std::string text = sample(100);
  std::string f = encodeDeflatedText(text, d);
  ASSERT_FALSE(f.empty());
  EXPECT_EQ(static_cast<uint8_t>(f[0]), 0xC1);  // FIN, RSV1, text
  FrameDecoder client(false, 1 << 20);
  client.acceptCompressed(true);
  Message m;
  client.feed(f.data(), f.size());
  ASSERT_EQ(client.next(m), FrameDecoder::Status::kMessage);
  EXPECT_TRUE(m.compressed);
  EXPECT_EQ(rawInflate(m.payload), text);
  // A short message does not shrink: the caller sends it plain.
  EXPECT_EQ(encodeDeflatedText("{}", d), "");
}

TEST(Inflater, TakesWhatZlibCompressesAndBoundsTheOutput) {
  Inflater in;
  std::string out;
  const std::string text = sample(300);
  ASSERT_EQ(in.inflate(rawDeflate(text), 1 << 20, out), Inflater::Result::kOk);
  EXPECT_EQ(out, text);
  // A bomb: 10 MB of one letter is a few KB compressed; the bound stops it as it grows.
  const std::string bomb = rawDeflate(std::string(10 << 20, 'a'), 9);
  EXPECT_LT(bomb.size(), 20000u);
  EXPECT_EQ(in.inflate(bomb, 64 * 1024, out), Inflater::Result::kTooBig);
  EXPECT_LE(out.size(), 64u * 1024);
  EXPECT_EQ(in.inflate("\xff\xfe garbage", 64 * 1024, out), Inflater::Result::kInvalid);
  // The inflater is reset between messages: a good one after the bad ones.
  ASSERT_EQ(in.inflate(rawDeflate("{\"type\":\"ping\"}"), 1024, out), Inflater::Result::kOk);
  EXPECT_EQ(out, "{\"type\":\"ping\"}");
}

TEST(FrameDecoderDeflate, Rsv1MarksACompressedMessageOnlyWhenNegotiated) {
  const std::string text = "{\"type\":\"subscribe\",\"stream\":\"peers\"}";
  const std::string frame = clientFrame(0xC1, rawDeflate(text));
  Message m;
  {
    FrameDecoder plain(true, 1024);
    plain.feed(frame.data(), frame.size());
    EXPECT_EQ(plain.next(m), FrameDecoder::Status::kError);
    EXPECT_EQ(plain.errorCode(), kCloseProtocolError);
  }
  FrameDecoder d(true, 1024);
  d.acceptCompressed(true);
  d.feed(frame.data(), frame.size());
  ASSERT_EQ(d.next(m), FrameDecoder::Status::kMessage);
  ASSERT_TRUE(m.compressed);
  EXPECT_EQ(completed(m, 1024), text);
  EXPECT_FALSE(m.compressed);
  // An uncompressed message on the same connection is fine too.
  const std::string plain_frame = clientFrame(0x81, text);
  d.feed(plain_frame.data(), plain_frame.size());
  ASSERT_EQ(d.next(m), FrameDecoder::Status::kMessage);
  EXPECT_FALSE(m.compressed);
  EXPECT_EQ(m.payload, text);
}

TEST(FrameDecoderDeflate, FragmentedCompressedMessageCarriesRsv1OnTheFirstFrameOnly) {
  const std::string text = sample(50);
  const std::string z = rawDeflate(text);
  const size_t half = z.size() / 2;
  Message m;
  FrameDecoder d(true, 1 << 20);
  d.acceptCompressed(true);
  std::string bytes = clientFrame(0x41, z.substr(0, half)) + clientFrame(0x80, z.substr(half));
  d.feed(bytes.data(), bytes.size());
  ASSERT_EQ(d.next(m), FrameDecoder::Status::kMessage);
  ASSERT_TRUE(m.compressed);
  EXPECT_EQ(completed(m, 1 << 20), text);
  // RSV1 on a continuation frame is an error (RFC 7692 6.1).
  FrameDecoder bad(true, 1 << 20);
  bad.acceptCompressed(true);
  bytes = clientFrame(0x41, z.substr(0, half)) + clientFrame(0xC0, z.substr(half));
  bad.feed(bytes.data(), bytes.size());
  EXPECT_EQ(bad.next(m), FrameDecoder::Status::kError);
  EXPECT_EQ(bad.errorCode(), kCloseProtocolError);
}

TEST(FrameDecoderDeflate, Rsv1OnAControlFrameOrRsv2IsAProtocolError) {
  for (uint8_t byte0 : {uint8_t{0xC9}, uint8_t{0xA1}, uint8_t{0x91}}) {
    FrameDecoder d(true, 1024);
    d.acceptCompressed(true);
    const std::string f = clientFrame(byte0, "x");
    d.feed(f.data(), f.size());
    Message m;
    EXPECT_EQ(d.next(m), FrameDecoder::Status::kError) << int{byte0};
    EXPECT_EQ(d.errorCode(), kCloseProtocolError) << int{byte0};
  }
}

TEST(FrameDecoderDeflate, InflatedTextMustBeUtf8AndWithinTheLimit) {
  Inflater in;
  uint16_t code = 0;
  std::string reason;
  Message m;
  m.op = Opcode::kText;
  m.compressed = true;
  m.payload = rawDeflate("\xff\xfe not UTF-8");
  EXPECT_FALSE(inflateMessage(in, m, 1024, code, reason));
  EXPECT_EQ(code, kCloseInvalidPayload);
  m.payload = rawDeflate(std::string(5000, 'a'));
  EXPECT_FALSE(inflateMessage(in, m, 4096, code, reason));
  EXPECT_EQ(code, kCloseTooBig);
  EXPECT_NE(reason.find("4096"), std::string::npos) << reason;
  m.payload = "not deflate at all";
  EXPECT_FALSE(inflateMessage(in, m, 4096, code, reason));
  EXPECT_EQ(code, kCloseInvalidPayload);
}
