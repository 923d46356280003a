// GET /theblock/receipts over a real HTTP listener (event loops and worker pool) on a real SQLite
// file: a page that is not in memory is read from the file on a worker, never on an event loop.
// Not timed: it records on which thread each page read happened.
#include <gtest/gtest.h>
#include <pthread.h>

#include <mutex>
#include <set>

#include "http/server.h"
#include "receipts_service.h"
#include "security/raw_client.h"
#include "support/process.h"

namespace rx = blockbuster::receipts;
using bbtest::TempDir;
using blockbuster::Json;
using namespace std::chrono_literals;

namespace {

std::string threadName() {
  char name[16] = "";
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

std::string bodyOf(const std::string& answer) {
  auto at = answer.find("\r\n\r\n");
  return at == std::string::npos ? "" : answer.substr(at + 4);
}

}  // namespace

TEST(ReceiptsOverHttp, ADeepPageIsReadOnAWorkerNeverOnAnEventLoop) {
  TempDir dir;
  rx::ServiceOptions options;
  options.db_path = dir.file("receipts.db");
  options.retention = rx::RetentionPolicy{0, 0};
  rx::ReceiptsService service(options);
  std::vector<rx::StoredReceipt> batch;
  for (int i = 0; i < 5000; ++i) {
    rx::StoredReceipt r;
    r.id = "r" + std::to_string(i);
    r.market = rx::marketNames()[static_cast<size_t>(i % 4)];
    r.block_height = i;
    batch.push_back(r);
  }
  service.store().ingest(batch, {}, 1000);

  std::mutex mutex;
  std::set<std::string> read_on, answered_on;  // thread names
  bb::Router router;
  router.get("/theblock/receipts",
             [&](const bb::HttpRequest& req) {
               // The receipts plugin's glue (receipts_plugin.cc), with a record of the threads.
               const uint64_t before = service.pagesRead();
               rx::HttpAnswer a = service.handleReceipts(req.query, 1000, req.may_block);
               std::lock_guard<std::mutex> lock(mutex);
               if (service.pagesRead() != before) read_on.insert(threadName());
               if (a.deferred()) return bb::HttpResponse::deferred(req);
               answered_on.insert(threadName());
               return bb::HttpResponse::json(std::move(a.body), a.status);
             },
             {"limit", "offset", "market", "before"});
  bb::ServerOptions o;
  o.host = "127.0.0.1";
  o.event_threads = 2;
  o.offload = [](const bb::HttpRequest&) { return false; };
  bb::HttpServer server(o, [&](bb::HttpRequest&& r) { return router.handle(std::move(r)); });
  server.start();

  sectest::RawClient client(server.port());
  auto get = [&](const std::string& target) {
    EXPECT_TRUE(client.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    return client.readResponse(10s);
  };
  for (const std::string target :
       {"/theblock/receipts?offset=4900", "/theblock/receipts?offset=1200&market=energy",
        "/theblock/receipts?offset=4900"}) {
    std::string answer = get(target);
    ASSERT_EQ(sectest::statusOf(answer), 200) << answer;
    Json body = Json::parse(bodyOf(answer));
    EXPECT_EQ(body["receipts"].size(), target.find("energy") != std::string::npos ? 50u : 100u)
        << target;
  }
  Json page = Json::parse(bodyOf(get("/theblock/receipts?offset=1200&market=energy")));
  EXPECT_EQ(page["total"], Json(1250));
  EXPECT_EQ(page["receipts"][size_t{0}]["id"], Json("r198"));  // energy: 4998 - 4 * 1200
  std::string answer = get("/theblock/receipts?before=zzz");
  EXPECT_EQ(sectest::statusOf(answer), 400);
  EXPECT_NE(answer.find("'before'"), std::string::npos) << answer;

  std::lock_guard<std::mutex> lock(mutex);
  ASSERT_EQ(service.pagesRead(), 2u);  // the repeated page came from memory
  ASSERT_FALSE(read_on.empty());
  for (const auto& name : read_on)
    EXPECT_NE(name.find("-d"), std::string::npos) << "a page was read on " << name;
  // The repeated page and the 400 were answered on a loop, from memory.
  bool on_a_loop = false;
  for (const auto& name : answered_on) on_a_loop |= name.find("-w") == std::string::npos;
  EXPECT_TRUE(on_a_loop);
}
