// What the event loop engine of a plain bb::HttpServer adds to the behaviour the security tests
// check: pipelined requests answered in order, a client that does not read holding no one
// else up, the keep-alive timeout, requests offloaded to workers, the WebSocket hand-over.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "host/plugin_routes.h"
#include "http/server.h"
#include "security/raw_client.h"
#include "support/await.h"

namespace {

using sectest::RawClient;
using sectest::statusOf;
using namespace std::chrono_literals;

// Answers every path with a body that names it; /big/<n> with n bytes.
bb::HttpResponse echo(const bb::HttpRequest& r) {
  if (r.path.rfind("/big/", 0) == 0)
    return bb::HttpResponse::json(std::string(std::stoul(r.path.substr(5)), 'x'));
  return bb::HttpResponse::json("{\"path\":\"" + r.path + "\"}");
}

std::unique_ptr<bb::HttpServer> serve(
    bb::ServerOptions o,
    bb::HttpServer::Handler handler = [](bb::HttpRequest&& r) { return echo(r); }) {
  o.host = "127.0.0.1";
  o.port = 0;
  auto s = std::make_unique<bb::HttpServer>(o, std::move(handler));
  s->start();
  return s;
}

std::string get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n";
}

std::string bodyOf(const std::string& answer) {
  size_t end = answer.find("\r\n\r\n");
  return end == std::string::npos ? "" : answer.substr(end + 4);
}

TEST(EventServer, PipelinedRequestsAreAnsweredInOrder) {
  auto server = serve({});
  RawClient c(server->port());
  ASSERT_TRUE(c.connected());
  // Three requests in one write, one with a small body the server must skip.
  ASSERT_TRUE(c.send(get("/first") +
                     "POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
                     get("/third", "Connection: close\r\n")));
  std::string first = c.readResponse(10s);
  std::string second = c.readResponse(10s);
  EXPECT_EQ(statusOf(first), 200) << first;
  EXPECT_EQ(bodyOf(first), "{\"path\":\"/first\"}");
  EXPECT_NE(first.find("Connection: Keep-Alive\r\n"), std::string::npos) << first;
  EXPECT_EQ(bodyOf(second), "{\"path\":\"/second\"}") << second;
  std::string third = c.readAll(10s);  // the last one closes the connection
  EXPECT_EQ(bodyOf(third), "{\"path\":\"/third\"}") << third;
  EXPECT_NE(third.find("Connection: Close\r\n"), std::string::npos) << third;
  EXPECT_TRUE(c.closed());
}

TEST(EventServer, AnswersCarryTheHeadersPocoSent) {
  auto server = serve({});
  RawClient c(server->port());
  ASSERT_TRUE(c.send("HEAD /x HTTP/1.0\r\n\r\n"));
  std::string answer = c.readAll(10s);
  EXPECT_EQ(answer.rfind("HTTP/1.0 200 OK\r\nDate: ", 0), 0u) << answer;
  EXPECT_NE(answer.find(" GMT\r\nConnection: Close\r\nContent-Type: application/json\r\n"
                        "Content-Length: 13\r\n\r\n"),
            std::string::npos)
      << answer;
  EXPECT_EQ(bodyOf(answer), "");  // HEAD: the length of the body, not the body
  EXPECT_TRUE(c.closed());        // HTTP/1.0 without keep-alive
}

TEST(EventServer, MalformedRequestLineIs400AndClosed) {
  auto server = serve({});
  RawClient c(server->port());
  ASSERT_TRUE(c.send("NONSENSE\r\n\r\n" + get("/after")));
  std::string answer = c.readAll(10s);
  EXPECT_EQ(statusOf(answer), 400) << answer;
  EXPECT_EQ(answer.find("/after"), std::string::npos) << answer;  // nothing read past it
  EXPECT_TRUE(c.closed());
}

TEST(EventServer, AClientThatDoesNotReadHoldsNoOneElseUp) {
  bb::ServerOptions o;
  o.event_threads = 1;  // both clients on the same loop
  std::atomic<int> big_answers{0};
  auto server = serve(o, [&](bb::HttpRequest&& r) {
    if (r.path.rfind("/big/", 0) == 0) ++big_answers;
    return echo(r);
  });
  // Asks for far more than the socket buffers hold, and reads nothing for now.
  constexpr size_t kBig = 8 << 20;
  RawClient hog(server->port());
  ASSERT_TRUE(hog.connected());
  std::string requests;
  for (int i = 0; i < 4; ++i) requests += get("/big/" + std::to_string(kBig));
  ASSERT_TRUE(hog.send(requests));
  // The loop is answering the hog (its first answer is more than the socket buffers take).
  ASSERT_TRUE(bbtest::eventually([&] { return big_answers > 0; }, 10s));
  // Another client is answered meanwhile.
  RawClient other(server->port());
  ASSERT_TRUE(other.send(get("/small")));
  std::string answer = other.readResponse(5s);
  EXPECT_EQ(statusOf(answer), 200) << answer;
  EXPECT_EQ(bodyOf(answer), "{\"path\":\"/small\"}");
  // The slow reader gets all of its answers, intact, once it reads.
  for (int i = 0; i < 4; ++i) {
    std::string big = hog.readResponse(30s);
    ASSERT_EQ(statusOf(big), 200) << i;
    EXPECT_EQ(bodyOf(big), std::string(kBig, 'x')) << i;
  }
}

TEST(EventServer, IdleKeptAliveConnectionIsClosedAfterTheTimeout) {
  bb::ServerOptions o;
  o.keep_alive_timeout_seconds = 1;
  auto server = serve(o);
  RawClient c(server->port());
  ASSERT_TRUE(c.send(get("/one")));
  ASSERT_EQ(statusOf(c.readResponse(10s)), 200);
  // Within the timeout the connection serves another request... (idle time is the behaviour
  // under test: a sleep, not an await)
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(c.send(get("/two")));
  ASSERT_EQ(statusOf(c.readResponse(10s)), 200);
  // ...and after it of silence, the server closes it (bounded generously).
  auto before = std::chrono::steady_clock::now();
  std::string rest = c.readAll(20s);
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(rest, "");
  EXPECT_GE(std::chrono::steady_clock::now() - before, 900ms);
}

TEST(EventServer, ARequestThatNeverCompletesIsDroppedWithinTheReadTimeout) {
  bb::ServerOptions o;
  o.read_timeout_seconds = 1;
  auto server = serve(o);
  RawClient c(server->port());
  // A byte now and then does not keep a request alive: its whole head has the timeout.
  auto before = std::chrono::steady_clock::now();
  for (int i = 0; i < 30 && c.send("G"); ++i) {
    std::this_thread::sleep_for(200ms);  // dribbling is the behaviour under test
    if (std::chrono::steady_clock::now() - before > 10s) break;
  }
  c.readAll(10s);
  EXPECT_TRUE(c.closed());
  EXPECT_LT(std::chrono::steady_clock::now() - before, 8s);
}

// A handler whose /slow waits until the test lets it go (at most 10 s).
struct Gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool open = false;
  std::atomic<int> waiting{0};
  void pass() {
    std::unique_lock<std::mutex> lock(mutex);
    ++waiting;
    cv.wait_for(lock, 10s, [this] { return open; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      open = true;
    }
    cv.notify_all();
  }
};

TEST(EventServer, AnOffloadedRequestDoesNotDelayOthers) {
  Gate gate;
  bb::ServerOptions o;
  o.event_threads = 1;
  o.offload = [](const bb::HttpRequest& r) { return r.path == "/slow"; };
  auto server = serve(o, [&gate](bb::HttpRequest&& r) {
    if (r.path == "/slow") gate.pass();
    return echo(r);
  });
  RawClient slow(server->port());
  ASSERT_TRUE(slow.send(get("/slow") + get("/after-slow")));
  bbtest::eventually([&] { return gate.waiting != 0; }, 2s, 20ms);
  ASSERT_EQ(gate.waiting, 1);
  // The slow request holds a worker, not the loop: another client is answered at once.
  RawClient fast(server->port());
  ASSERT_TRUE(fast.send(get("/fast")));
  std::string answer = fast.readResponse(5s);
  EXPECT_EQ(bodyOf(answer), "{\"path\":\"/fast\"}") << answer;
  // The slow connection's answers come in order once the handler returns.
  EXPECT_EQ(slow.readResponse(300ms), "");  // nothing yet, not even the pipelined one
  gate.release();
  EXPECT_EQ(bodyOf(slow.readResponse(10s)), "{\"path\":\"/slow\"}");
  EXPECT_EQ(bodyOf(slow.readResponse(10s)), "{\"path\":\"/after-slow\"}");
}

TEST(EventServer, ADeferredRequestRunsAgainOnAWorkerAndTheQueueIsCapped) {
  Gate gate;
  struct Run {
    std::string path, thread;
    bool may_block;
  };
  std::mutex mutex;
  std::vector<Run> runs;
  auto ran = [&](const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& r : runs)
      if (r.path == path) return true;
    return false;
  };
  bb::ServerOptions o;
  o.event_threads = 1;
  o.deferred_threads = 1;
  o.max_deferred_queued = 1;
  o.offload = [](const bb::HttpRequest&) { return false; };  // nothing offloaded up front
  auto server = serve(o, [&](bb::HttpRequest&& r) {
    char name[16] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    {
      std::lock_guard<std::mutex> lock(mutex);
      runs.push_back(Run{r.path, name, r.may_block});
    }
    if (r.path == "/fast") return echo(r);
    if (!r.may_block) return bb::HttpResponse::deferred(r);
    if (r.path == "/hold") gate.pass();
    return echo(r);
  });
  RawClient hold(server->port());
  ASSERT_TRUE(hold.send(get("/hold?x=1")));
  bbtest::eventually([&] { return gate.waiting != 0; }, 5s, 20ms);
  ASSERT_EQ(gate.waiting, 1);  // the one worker holds /hold
  RawClient queued(server->port());
  ASSERT_TRUE(queued.send(get("/queued")));
  bbtest::eventually([&] { return ran("/queued"); }, 5s, 20ms);
  ASSERT_TRUE(ran("/queued"));  // deferred by the loop: it waits in the queue (1)
  // The queue is full: another deferred request is refused at once, with Retry-After.
  RawClient refused(server->port());
  ASSERT_TRUE(refused.send(get("/refused")));
  std::string answer = refused.readResponse(5s);
  EXPECT_EQ(statusOf(answer), 503) << answer;
  EXPECT_NE(answer.find("Retry-After: 1"), std::string::npos) << answer;
  EXPECT_NE(answer.find("too many queries are waiting"), std::string::npos) << answer;
  // The loop still answers what it can from memory meanwhile.
  RawClient fast(server->port());
  ASSERT_TRUE(fast.send(get("/fast")));
  EXPECT_EQ(bodyOf(fast.readResponse(5s)), "{\"path\":\"/fast\"}");
  gate.release();
  EXPECT_EQ(bodyOf(hold.readResponse(10s)), "{\"path\":\"/hold\"}");
  EXPECT_EQ(bodyOf(queued.readResponse(10s)), "{\"path\":\"/queued\"}");
  // Each deferred request ran on the loop without leave to block, then once on the worker.
  std::lock_guard<std::mutex> lock(mutex);
  for (const auto& r : runs)
    EXPECT_EQ(r.thread.find("-d") != std::string::npos, r.may_block) << r.path << " " << r.thread;
  EXPECT_EQ(std::count_if(runs.begin(), runs.end(), [](const Run& r) { return r.may_block; }), 2);
}

TEST(EventServer, ScrapesDoNotWaitBehindStoreQueriesWhichRunAtALowerPriority) {
  Gate gate;
  std::mutex mutex;
  std::map<std::string, int> nice_of;  // path -> the nice value of the thread that answered it
  bb::ServerOptions o;
  o.event_threads = 1;
  o.deferred_threads = 1;
  o.deferred_nice = 7;
  o.offload = [](const bb::HttpRequest& r) { return r.path == "/metrics"; };
  auto server = serve(o, [&](bb::HttpRequest&& r) {
    if (r.path != "/metrics" && !r.may_block) return bb::HttpResponse::deferred(r);
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
    {
      std::lock_guard<std::mutex> lock(mutex);
      nice_of[r.path] = nice;
    }
    if (r.path == "/hold") gate.pass();
    return echo(r);
  });
  // The only store worker is held by a query...
  RawClient hold(server->port());
  ASSERT_TRUE(hold.send(get("/hold")));
  bbtest::eventually([&] { return gate.waiting != 0; }, 5s, 20ms);
  ASSERT_EQ(gate.waiting, 1);
  // ...and a scrape is answered meanwhile, by a worker of its own at the loops' priority.
  RawClient scrape(server->port());
  ASSERT_TRUE(scrape.send(get("/metrics")));
  EXPECT_EQ(bodyOf(scrape.readResponse(10s)), "{\"path\":\"/metrics\"}");
  gate.release();
  EXPECT_EQ(bodyOf(hold.readResponse(10s)), "{\"path\":\"/hold\"}");
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(nice_of["/hold"], std::min(19, getpriority(PRIO_PROCESS, 0) + 7));  // `nice ctest`
  EXPECT_EQ(nice_of["/metrics"], getpriority(PRIO_PROCESS, 0));
}

TEST(EventServer, NewConnectionsGoToTheLoopServingTheFewest) {
  std::mutex mutex;
  std::map<std::string, int> served_by;  // loop thread name -> connections it answered
  bb::ServerOptions o;
  o.event_threads = 2;
  auto server = serve(o, [&](bb::HttpRequest&& r) {
    char name[16] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    std::lock_guard<std::mutex> lock(mutex);
    ++served_by[name];
    return echo(r);
  });
  // One after the other while the loops are idle: EPOLLEXCLUSIVE alone wakes the same loop for
  // each (the first waiting), which would then serve all eight.
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<RawClient>(server->port()));
    ASSERT_TRUE(clients.back()->send(get("/c" + std::to_string(i))));
    EXPECT_EQ(bodyOf(clients.back()->readResponse(10s)),
              "{\"path\":\"/c" + std::to_string(i) + "\"}");
  }
  std::lock_guard<std::mutex> lock(mutex);
  ASSERT_EQ(served_by.size(), 2u);
  for (const auto& [loop, n] : served_by) EXPECT_EQ(n, 4) << loop;
}

TEST(EventServer, StoreQueriesRunAtTheLowestPriorityByDefault) {
  std::atomic<int> nice{-100};
  bb::ServerOptions o;  // deferred_nice as shipped
  o.event_threads = 1;
  o.deferred_threads = 1;
  o.offload = [](const bb::HttpRequest&) { return false; };
  auto server = serve(o, [&](bb::HttpRequest&& r) {
    if (!r.may_block) return bb::HttpResponse::deferred(r);
    nice = getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
    return echo(r);
  });
  RawClient c(server->port());
  ASSERT_TRUE(c.send(get("/page")));
  EXPECT_EQ(bodyOf(c.readResponse(10s)), "{\"path\":\"/page\"}");
  EXPECT_EQ(nice.load(), 19);  // whatever the agent's own nice: the lowest there is
}

// Records the hand-over of an upgraded connection.
class Recorder : public bb::UpgradeHandler {
 public:
  bool handlesPath(const std::string& path) const override { return path == "/ws"; }
  std::optional<bb::HttpResponse> checkUpgrade(const bb::HttpRequest&) override {
    return std::nullopt;
  }
  void adopt(bb::net::Stream stream, const bb::HttpRequest& request, std::string pending) override {
    std::lock_guard<std::mutex> lock(mutex);
    path = request.path;
    bytes = std::move(pending);
    stream.write("adopted", 7);
  }  // the stream closes
  std::mutex mutex;
  std::string path, bytes;
};

TEST(EventServer, UpgradeHandsTheSocketOverWithTheBytesThatFollowed) {
  auto server = serve({});
  Recorder recorder;
  server->setUpgradeHandler(&recorder);
  RawClient c(server->port());
  ASSERT_TRUE(
      c.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
             "first frame bytes"));
  std::string answer = c.readAll(10s);
  EXPECT_EQ(statusOf(answer), 101) << answer;
  // RFC 6455's own example key and answer.
  EXPECT_NE(answer.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            std::string::npos)
      << answer;
  EXPECT_EQ(answer.find("Content-Length"), std::string::npos) << answer;
  EXPECT_NE(answer.find("\r\n\r\nadopted"), std::string::npos) << answer;
  std::lock_guard<std::mutex> lock(recorder.mutex);
  EXPECT_EQ(recorder.path, "/ws");
  EXPECT_EQ(recorder.bytes, "first frame bytes");
}

TEST(EventServer, StopIsPromptWithConnectionsOpen) {
  auto server = serve({});
  RawClient idle(server->port()), partial(server->port());
  ASSERT_TRUE(idle.send(get("/x")));
  ASSERT_EQ(statusOf(idle.readResponse(10s)), 200);
  ASSERT_TRUE(partial.send("GET /half"));
  // Nothing marks a half head as read by the loop (no handler runs): stop must be prompt either
  // way, and 100 ms makes the half-read state the likely one.
  std::this_thread::sleep_for(100ms);
  auto before = std::chrono::steady_clock::now();
  server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);
  idle.readAll(5s);
  EXPECT_TRUE(idle.closed());
}

int route(void*, const bb_request*, bb_sink_fn sink, void* sink_ctx) {
  sink(sink_ctx, "{}", 2);
  return 200;
}

TEST(PluginRoutes, RoutesOfProcessPluginsAreMarkedBlocking) {
  bb::PluginRoutes routes;
  EXPECT_FALSE(routes.blocking("/a"));
  ASSERT_EQ(routes.add("/a", "inproc", &route, nullptr), "");
  ASSERT_EQ(routes.add("/b", "isolated", &route, nullptr, true), "");
  EXPECT_FALSE(routes.blocking("/a"));
  EXPECT_TRUE(routes.blocking("/b"));
  EXPECT_FALSE(routes.blocking("/c"));
  routes.removePlugin("isolated");
  EXPECT_FALSE(routes.blocking("/b"));
}

}  // namespace
