// The WebSocket frame codec, the per-client latest-per-stream queue and the protocol helpers.
#include "ws/frame.h"

#include <blockbuster/json.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ws/client_queue.h"
#include "ws/protocol.h"

using blockbuster::Json;
using namespace bb::ws;

namespace {

FrameDecoder::Status decodeAll(FrameDecoder& d, const std::string& bytes, Message& m) {
  d.feed(bytes.data(), bytes.size());
  return d.next(m);
}

FramePtr frame(const std::string& s) { return std::make_shared<const std::string>(s); }

}  // namespace

TEST(FrameEncoder, UsesTheThreeLengthForms) {
  EXPECT_EQ(encodeFrame(Opcode::kText, "hi"), std::string("\x81\x02hi", 4));
  std::string mid(300, 'a');
  std::string f = encodeFrame(Opcode::kText, mid);
  ASSERT_EQ(f.size(), 4 + mid.size());
  EXPECT_EQ(static_cast<uint8_t>(f[1]), 126);
  EXPECT_EQ((static_cast<uint8_t>(f[2]) << 8) | static_cast<uint8_t>(f[3]), 300);
  std::string big(70000, 'b');
  f = encodeFrame(Opcode::kBinary, big);
  ASSERT_EQ(f.size(), 10 + big.size());
  EXPECT_EQ(static_cast<uint8_t>(f[0]), 0x82);
  EXPECT_EQ(static_cast<uint8_t>(f[1]), 127);
  uint64_t len = 0;
  for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<uint8_t>(f[2 + i]);
  EXPECT_EQ(len, 70000u);
}

TEST(FrameEncoder, CloseCarriesCodeAndTruncatedReason) {
  std::string f = encodeClose(1009, std::string(200, 'r'));
  ASSERT_EQ(static_cast<uint8_t>(f[0]), 0x88);
  ASSERT_EQ(static_cast<uint8_t>(f[1]), 125);  // control frames stay within 125 bytes
  EXPECT_EQ((static_cast<uint8_t>(f[2]) << 8) | static_cast<uint8_t>(f[3]), 1009);
}

TEST(FrameDecoder, DecodesMaskedFramesFedByteByByte) {
  std::string wire = encodeFrame(Opcode::kText, "{\"type\":\"ping\"}", 0x12345678);
  EXPECT_NE(wire.find('p'), 7u);  // masked: the payload is not in clear
  FrameDecoder d(true, 1024);
  Message m;
  for (size_t i = 0; i + 1 < wire.size(); ++i) {
    d.feed(&wire[i], 1);
    ASSERT_EQ(d.next(m), FrameDecoder::Status::kNeedMore) << "at byte " << i;
  }
  d.feed(&wire.back(), 1);
  ASSERT_EQ(d.next(m), FrameDecoder::Status::kMessage);
  EXPECT_EQ(m.op, Opcode::kText);
  EXPECT_EQ(m.payload, "{\"type\":\"ping\"}");
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(FrameDecoder, ReassemblesFragmentsAroundAControlFrame) {
  // "Hel" (text, no FIN) + ping + "lo" (continuation, FIN), all masked.
  std::string first = encodeFrame(Opcode::kText, "Hel", 0xA1B2C3D4);
  first[0] = static_cast<char>(0x01);  // clear FIN
  std::string cont = encodeFrame(Opcode::kContinuation, "lo", 0x01020304);
  std::string ping = encodeFrame(Opcode::kPing, "p", 0x0F0F0F0F);
  FrameDecoder d(true, 1024);
  std::string all = first + ping + cont;
  d.feed(all.data(), all.size());
  Message m;
  ASSERT_EQ(d.next(m), FrameDecoder::Status::kMessage);
  EXPECT_EQ(m.op, Opcode::kPing);
  EXPECT_EQ(m.payload, "p");
  ASSERT_EQ(d.next(m), FrameDecoder::Status::kMessage);
  EXPECT_EQ(m.op, Opcode::kText);
  EXPECT_EQ(m.payload, "Hello");
  EXPECT_EQ(d.next(m), FrameDecoder::Status::kNeedMore);
}

TEST(FrameDecoder, RefusesUnmaskedClientFrames) {
  FrameDecoder d(true, 1024);
  Message m;
  EXPECT_EQ(decodeAll(d, encodeFrame(Opcode::kText, "x"), m), FrameDecoder::Status::kError);
  EXPECT_EQ(d.errorCode(), kCloseProtocolError);
  // A client-side decoder reads the server's unmasked frames.
  FrameDecoder client(false, 1024);
  EXPECT_EQ(decodeAll(client, encodeFrame(Opcode::kText, "x"), m), FrameDecoder::Status::kMessage);
}

TEST(FrameDecoder, RefusesATooBigFrameFromItsHeaderAlone) {
  FrameDecoder d(true, 64 * 1024);
  std::string wire = encodeFrame(Opcode::kText, std::string(64 * 1024 + 1, 'x'), 1);
  Message m;
  d.feed(wire.data(), 14);  // header + mask only: refused before the payload arrives
  EXPECT_EQ(d.next(m), FrameDecoder::Status::kError);
  EXPECT_EQ(d.errorCode(), kCloseTooBig);
  // Exactly at the limit is fine.
  FrameDecoder ok(true, 64 * 1024);
  EXPECT_EQ(decodeAll(ok, encodeFrame(Opcode::kText, std::string(64 * 1024, 'x'), 1), m),
            FrameDecoder::Status::kMessage);
  EXPECT_EQ(m.payload.size(), 64u * 1024);
}

TEST(FrameDecoder, RefusesTooBigReassembledMessagesAndProtocolErrors) {
  std::string a = encodeFrame(Opcode::kText, std::string(600, 'a'), 7);
  a[0] = static_cast<char>(0x01);
  std::string b = encodeFrame(Opcode::kContinuation, std::string(600, 'b'), 7);
  FrameDecoder d(true, 1000);
  Message m;
  EXPECT_EQ(decodeAll(d, a + b, m), FrameDecoder::Status::kError);
  EXPECT_EQ(d.errorCode(), kCloseTooBig);

  FrameDecoder lone(true, 1000);
  EXPECT_EQ(decodeAll(lone, encodeFrame(Opcode::kContinuation, "x", 7), m),
            FrameDecoder::Status::kError);
  EXPECT_EQ(lone.errorCode(), kCloseProtocolError);

  FrameDecoder big_ping(true, 1000);
  EXPECT_EQ(decodeAll(big_ping, encodeFrame(Opcode::kPing, std::string(126, 'p'), 7), m),
            FrameDecoder::Status::kError);

  std::string rsv = encodeFrame(Opcode::kText, "x", 7);
  rsv[0] = static_cast<char>(rsv[0] | 0x40);
  FrameDecoder compressed(true, 1000);
  EXPECT_EQ(decodeAll(compressed, rsv, m), FrameDecoder::Status::kError);
}

TEST(FrameDecoder, ReadsTheCloseCode) {
  FrameDecoder d(true, 1000);
  Message m;
  ASSERT_EQ(decodeAll(d, encodeClose(1001, "bye", 9), m), FrameDecoder::Status::kMessage);
  EXPECT_EQ(m.op, Opcode::kClose);
  EXPECT_EQ(m.close_code, 1001);
  FrameDecoder empty(true, 1000);
  ASSERT_EQ(decodeAll(empty, encodeFrame(Opcode::kClose, "", 9), m),
            FrameDecoder::Status::kMessage);
  EXPECT_EQ(m.close_code, 1005);
}

TEST(ClientQueue, KeepsOnlyTheLatestMessageOfEachStreamInPlace) {
  ClientQueue q;
  q.pushLatest(0, frame("m1"));
  q.pushLatest(2, frame("p1"));
  q.pushLatest(0, frame("m2"));  // replaces m1 where it stands, ahead of p1
  q.pushLatest(0, frame("m3"));
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.takeDropped(), 2u);
  EXPECT_EQ(q.takeDropped(), 0u);
  EXPECT_EQ(*q.pop(), "m3");
  EXPECT_EQ(*q.pop(), "p1");
  EXPECT_EQ(q.pop(), nullptr);
}

TEST(ClientQueue, APendingSnapshotStaysASnapshot) {
  ClientQueue q;
  q.pushSnapshot(1, frame("snap1"));
  q.pushLatest(1, frame("upd2"), frame("snap2"));
  EXPECT_EQ(*q.pop(), "snap2");
  // Without a pending snapshot, the update is queued.
  q.pushLatest(1, frame("upd3"), frame("snap3"));
  EXPECT_EQ(*q.pop(), "upd3");
}

TEST(ClientQueue, UpdatesOfAClientThatKeepsUpWaitTogetherInOrder) {
  ClientQueue q;
  q.pushUpdate(0, frame("m1"), frame("s1"), 2);
  q.pushUpdate(2, frame("p1"), frame("sp1"), 2);
  q.pushUpdate(0, frame("m2"), frame("s2"), 2);  // queued behind, not replacing m1
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q.peek(0), "m1");  // peek leaves them for one gathered write
  EXPECT_EQ(q.peek(2), "m2");
  EXPECT_EQ(q.takeDropped(), 0u);
  // Over the cap, the newest pending one of the stream is replaced: the order holds.
  q.pushUpdate(0, frame("m3"), frame("s3"), 2);
  EXPECT_EQ(q.takeDropped(), 1u);
  EXPECT_EQ(*q.pop(), "m1");
  EXPECT_EQ(*q.pop(), "p1");
  EXPECT_EQ(*q.pop(), "m3");
  EXPECT_TRUE(q.empty());
  // A pending snapshot stays the first message of its stream.
  q.pushSnapshot(1, frame("snap1"));
  q.pushUpdate(1, frame("upd2"), frame("snap2"), 2);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(*q.pop(), "snap2");
}

TEST(ClientQueue, TheLatestReplacesEveryPendingUpdateOfItsStream) {
  ClientQueue q;
  q.pushUpdate(0, frame("m1"), nullptr, 4);
  q.pushUpdate(1, frame("p1"), nullptr, 4);
  q.pushUpdate(0, frame("m2"), nullptr, 4);
  q.pushLatest(0, frame("m3"));  // the socket stopped taking: only the latest of 0 waits
  EXPECT_EQ(q.takeDropped(), 2u);
  EXPECT_EQ(*q.pop(), "m3");
  EXPECT_EQ(*q.pop(), "p1");
  EXPECT_TRUE(q.empty());
}

TEST(ClientQueue, ControlMessagesKeepOrderUpToTheCap) {
  ClientQueue q(2);
  EXPECT_TRUE(q.pushControl(frame("welcome")));
  q.pushLatest(0, frame("data"));
  EXPECT_TRUE(q.pushControl(frame("pong")));
  EXPECT_FALSE(q.pushControl(frame("error")));
  EXPECT_EQ(q.takeDropped(), 1u);
  q.removeStream(0);
  EXPECT_EQ(*q.pop(), "welcome");
  EXPECT_TRUE(q.pushControl(frame("again")));  // a slot was freed by pop()
  EXPECT_EQ(*q.pop(), "pong");
  EXPECT_EQ(*q.pop(), "again");
  EXPECT_TRUE(q.empty());
}

TEST(Protocol, FingerprintIgnoresAgeFieldsOnly) {
  std::string a = R"({"block_height":5,"timestamp":100,"age_seconds":0.5,"stale":false,
                      "m":{"x":1,"age_seconds":2,"last_success_age_seconds":3}})";
  std::string b = R"({"block_height":5,"timestamp":101,"age_seconds":1.5,"stale":false,
                      "m":{"x":1,"age_seconds":9,"last_success_age_seconds":4}})";
  std::string c = R"({"block_height":6,"timestamp":101,"age_seconds":1.5,"stale":false,
                      "m":{"x":1,"age_seconds":9}})";
  EXPECT_EQ(contentFingerprint(a), contentFingerprint(b));
  EXPECT_NE(contentFingerprint(a), contentFingerprint(c));
  // A nested timestamp is data (e.g. a receipt's), not an age.
  EXPECT_NE(contentFingerprint(R"({"r":[{"timestamp":1}]})"),
            contentFingerprint(R"({"r":[{"timestamp":2}]})"));
}

TEST(Protocol, FingerprintReadsStringsArraysAndLayout) {
  // Layout outside strings is not content; inside strings it is.
  EXPECT_EQ(contentFingerprint(R"({"a":[1,2],"b":"x y"})"),
            contentFingerprint("{ \"a\" : [ 1 , 2 ] ,\n \"b\" : \"x y\" }"));
  EXPECT_NE(contentFingerprint(R"({"b":"x y"})"), contentFingerprint(R"({"b":"xy"})"));
  // Braces, quotes and key-like text inside strings are data.
  EXPECT_NE(contentFingerprint(R"({"s":"}\"age_seconds\":1"})"),
            contentFingerprint(R"({"s":"}\"age_seconds\":2"})"));
  // Ages inside arrays of objects are left out; their siblings are not.
  EXPECT_EQ(contentFingerprint(R"({"p":[{"id":1,"age_seconds":3},{"id":2}]})"),
            contentFingerprint(R"({"p":[{"id":1,"age_seconds":9},{"id":2}]})"));
  EXPECT_NE(contentFingerprint(R"({"p":[{"id":1},{"id":2}]})"),
            contentFingerprint(R"({"p":[{"id":1,"id":2}]})"));
  // Leaving an object or array value out is not the same as an empty one.
  EXPECT_NE(contentFingerprint(R"({"a":{},"age_seconds":{"x":[1]}})"),
            contentFingerprint(R"({"a":{"x":[1]}})"));
  EXPECT_NE(contentFingerprint(R"({"a":[],"b":1})"), contentFingerprint(R"({"a":[1]})"));
  // Not JSON: the text itself, so any change is a change.
  EXPECT_EQ(contentFingerprint("{\"a\":"), contentFingerprint("{\"a\":"));
  EXPECT_NE(contentFingerprint("{\"a\":"), contentFingerprint("{\"a\":1"));
  EXPECT_NE(contentFingerprint(R"({"a":1} x)"), contentFingerprint(R"({"a":1})"));
}

TEST(Protocol, HealthFingerprintFollowsStatusReachabilityAndPluginStates) {
  auto health = [](const char* status, bool reachable, const char* state, int uptime) {
    return Json{{"status", status},
                {"reasons", Json::array()},
                {"uptime_seconds", uptime},
                {"node", Json{{"reachable", reachable}, {"last_answer_age_seconds", uptime}}},
                {"plugins", Json{{"network", Json{{"state", state}, {"collections", uptime}}}}}}
        .dump();
  };
  EXPECT_EQ(healthFingerprint(health("ok", true, "ok", 1)),
            healthFingerprint(health("ok", true, "ok", 50)));
  EXPECT_NE(healthFingerprint(health("ok", true, "ok", 1)),
            healthFingerprint(health("degraded", false, "ok", 1)));
  EXPECT_NE(healthFingerprint(health("ok", true, "ok", 1)),
            healthFingerprint(health("ok", true, "failing", 1)));
}

TEST(Protocol, HealthFingerprintFollowsTheCausesNotTheirWording) {
  auto health = [](std::vector<std::string> reasons) {
    Json r = Json::array();
    for (auto& x : reasons) r.push_back(x);
    return Json{{"status", "degraded"}, {"reasons", r}, {"node", Json{{"reachable", true}}}}.dump();
  };
  // One outage whose failing call's message changes: one message, not one per wording.
  EXPECT_EQ(healthFingerprint(health({"plugin storage is failing: storage.manifests: timeout"})),
            healthFingerprint(health({"plugin storage is failing: governor.status: reset"})));
  // Another cause is a change.
  EXPECT_NE(healthFingerprint(health({"plugin storage is failing: x"})),
            healthFingerprint(
                health({"plugin storage is failing: x", "market energy is unavailable: y"})));
}

TEST(Protocol, MessagesHaveTheDocumentedShape) {
  Json m = Json::parse(dataMessage("update", "peers", R"({"peers":[]})", 7, 1700000000123));
  EXPECT_EQ(m["type"].asString(), "update");
  EXPECT_EQ(m["stream"].asString(), "peers");
  EXPECT_TRUE(m["data"]["peers"].isArray());
  EXPECT_EQ(m["seq"].asInt(), 7);
  EXPECT_EQ(m["timestamp"].asInt(), 1700000000123);
  Json c = Json::parse(controlMessage("pong", "", "", 5));
  EXPECT_TRUE(c["stream"].isNull());
  EXPECT_TRUE(c["seq"].isNull());
  EXPECT_TRUE(c["data"].isNull());
  Json f = Json::parse(featureMessage({"a.x", "b.y"}, {1.5, std::nan("")}, 0.25, 9));
  EXPECT_EQ(f["topic"].asString(), "features");
  EXPECT_EQ(f["data"].size(), 2u);
  EXPECT_DOUBLE_EQ(f["data"][0].asDouble(), 1.5);
  EXPECT_TRUE(f["data"][1].isNull());
  EXPECT_DOUBLE_EQ(f["feature_lag_seconds"].asDouble(), 0.25);
  EXPECT_TRUE(Json::parse(featureMessage({}, {}, std::nullopt, 9))["feature_lag_seconds"].isNull());
}

TEST(Protocol, ParsesClientRequestsAndNamesWhatIsWrong) {
  auto r = parseClientRequest(R"({"type":"subscribe","stream":"health"})");
  EXPECT_EQ(r.kind, ClientRequest::Kind::kSubscribe);
  EXPECT_EQ(r.stream, kHealthStream);
  EXPECT_EQ(parseClientRequest(R"({"type":"ping"})").kind, ClientRequest::Kind::kPing);
  r = parseClientRequest("{nope");
  EXPECT_EQ(r.code, "bad_json");
  r = parseClientRequest(R"({"type":"subscribe","stream":"blocks"})");
  EXPECT_EQ(r.code, "unknown_stream");
  EXPECT_NE(r.error.find("blocks"), std::string::npos);
  r = parseClientRequest(R"({"type":"dance"})");
  EXPECT_EQ(r.code, "unknown_type");
  EXPECT_NE(r.error.find("dance"), std::string::npos);
  r = parseClientRequest(R"({"type":"subscribe"})");
  EXPECT_EQ(r.code, "bad_request");
  // The feature stream takes only ping.
  EXPECT_EQ(parseClientRequest(R"({"type":"subscribe","stream":"health"})", false).code,
            "unknown_type");
}
