// The framed channel between the agent and bb-plugin-runner: frames round-trip, malformed
// frames are refused (a plugin's process may write anything), and a peer that goes away ends
// every waiting call at once.
#include <blockbuster/json.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "ipc/channel.h"
#include "ipc/protocol.h"

using bb::ipc::Channel;
using bb::ipc::Message;

namespace {

TEST(Ipc, FramesRoundTripWithEmptyAndBinaryFields) {
  Message m;
  m.kind = 23;
  m.id = 77;
  m.fields = {"", std::string("a\0b", 3), std::string(100000, 'x')};
  const std::string frame = bb::ipc::encode(m);
  uint32_t len = 0;
  std::memcpy(&len, frame.data(), 4);
  ASSERT_EQ(len, frame.size() - 4);
  auto back = bb::ipc::decode(frame.data() + 4, len);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->kind, 23);
  EXPECT_EQ(back->id, 77u);
  EXPECT_EQ(back->fields, m.fields);
  EXPECT_EQ(back->field(9), "");
  EXPECT_EQ(back->integer(0, -5), -5) << "an empty field is no number";
}

TEST(Ipc, MalformedFramesAreRefused) {
  Message m;
  m.kind = 1;
  m.fields = {"abc", "de"};
  const std::string frame = bb::ipc::encode(m);
  const std::string body = frame.substr(4);
  for (size_t cut = 0; cut < body.size(); ++cut)
    EXPECT_FALSE(bb::ipc::decode(body.data(), cut).has_value()) << "truncated at " << cut;
  std::string longer = body + "z";
  EXPECT_FALSE(bb::ipc::decode(longer.data(), longer.size()).has_value()) << "trailing bytes";
  std::string lying = body;
  uint32_t huge = 0x7fffffff;
  std::memcpy(&lying[5], &huge, 4);  // the field count
  EXPECT_FALSE(bb::ipc::decode(lying.data(), lying.size()).has_value());
}

TEST(Ipc, IntegerFieldsAreParsedStrictly) {
  Message m;
  m.fields = {"42", "-7", "4x", " 1"};
  EXPECT_EQ(m.integer(0), 42);
  EXPECT_EQ(m.integer(1), -7);
  EXPECT_EQ(m.integer(2, 99), 99);
  EXPECT_EQ(m.integer(3, 99), 99);
}

struct Pair {
  Pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0); }
  int fds[2];
};

TEST(Ipc, CallsAreAnsweredByIdWhileTheOtherSideCallsBack) {
  Pair p;
  // "b" answers each request by calling back into "a" first: the handler hands the work to a
  // thread, as the real ends do, so both readers stay free.
  std::unique_ptr<Channel> a, b;
  std::vector<std::thread> workers;
  std::mutex workers_mutex;
  a = std::make_unique<Channel>(p.fds[0],
                                [&](Message m) { a->reply(m.id, {"pong:" + m.field(0)}); });
  b = std::make_unique<Channel>(p.fds[1], [&](Message m) {
    std::lock_guard<std::mutex> lock(workers_mutex);
    workers.emplace_back([&, m] {
      auto inner = b->call(9, {m.field(0)}, std::chrono::seconds(5));
      b->reply(m.id, {inner ? inner->field(0) : "lost"});
    });
  });
  a->start();
  b->start();
  std::vector<std::thread> callers;
  std::atomic<int> good{0};
  for (int i = 0; i < 8; ++i)
    callers.emplace_back([&, i] {
      auto r = a->call(2, {std::to_string(i)}, std::chrono::seconds(5));
      if (r && r->field(0) == "pong:" + std::to_string(i)) ++good;
    });
  for (auto& t : callers) t.join();
  {
    std::lock_guard<std::mutex> lock(workers_mutex);
    for (auto& t : workers) t.join();
  }
  EXPECT_EQ(good.load(), 8);
}

TEST(Ipc, APeerThatGoesAwayEndsWaitingCallsAtOnce) {
  Pair p;
  std::atomic<bool> closed{false};
  Channel a(
      p.fds[0], [](Message) {}, [&] { closed = true; });
  a.start();
  std::thread killer([&] {
    // Once the call is on the wire (its request readable at the plugin's end), the plugin's
    // process dies: its end closes.
    pollfd request{p.fds[1], POLLIN, 0};
    ::poll(&request, 1, 10000);
    ::close(p.fds[1]);
  });
  auto r = a.call(2, {}, std::chrono::seconds(60));
  killer.join();
  EXPECT_FALSE(r.has_value());
  EXPECT_TRUE(a.closed());
  a.join();
  EXPECT_TRUE(closed.load());
  EXPECT_FALSE(a.call(2, {}, std::chrono::seconds(60)).has_value()) << "closed stays closed";
}

TEST(Ipc, AnOversizedOrGarbageFrameClosesTheChannel) {
  Pair p;
  std::atomic<bool> closed{false};
  std::atomic<int> requests{0};
  Channel a(
      p.fds[0], [&](Message) { ++requests; }, [&] { closed = true; });
  a.start();
  uint32_t huge = bb::ipc::kMaxFrameBytes + 1;
  ASSERT_EQ(::write(p.fds[1], &huge, 4), 4);
  a.join();
  EXPECT_TRUE(closed.load());
  EXPECT_EQ(requests.load(), 0);
  ::close(p.fds[1]);
}

}  // namespace

namespace {

// The bodies the agent and the runner write themselves are JSON whatever the text they carry
// (process_plugin.cc once concatenated the message unescaped: a quote or a newline in it made
// the 503 body of a restarting plugin's route invalid JSON).
TEST(Ipc, BodiesWrittenByEitherSideAreJsonWhateverTheirText) {
  const std::string nasty = "plugin 'x\" \\ y'\nis \x01 restarting </script>";
  const auto route = blockbuster::Json::parse(bb::ipc::routeErrorBody("plugin_unavailable", nasty));
  EXPECT_EQ(route["error"]["code"].asString(), "plugin_unavailable");
  EXPECT_EQ(route["error"]["message"].asString(), nasty);
  const auto call = blockbuster::Json::parse(bb::ipc::callFailureBody(nasty));
  EXPECT_EQ(call["code"].asInt(), 0);
  EXPECT_EQ(call["message"].asString(), nasty);
}

}  // namespace
