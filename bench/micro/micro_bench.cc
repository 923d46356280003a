// Micro-benchmarks of the agent's hot paths on its own static libraries (Google Benchmark):
// rendering each endpoint's body, the /metrics exposition with 5 000 plugin series, the receipts
// query on a 100 000-receipt SQLite file, and Router::handle. Run through bench/micro/run.py,
// which builds this target and writes bench/results/micro.md.
//
// The section bodies are real ones captured from the agent against bb-devnode
// (bench/micro/capture.py -> bench/micro/data/*.json), so the JSON sizes are the served ones.
//
// Each benchmark also times every iteration and reports p50_us / p99_us counters: a scrape or a
// request is one iteration, and the tail is what a target is about.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "api/dashboard_api.h"
#include "http/router.h"
#include "metrics/metrics.h"
#include "receipt_fill.h"
#include "receipt_store.h"
#include "receipts_service.h"
#include "snapshot/snapshot_store.h"

namespace {

using Clock = std::chrono::steady_clock;

// Records each iteration's duration; Report() sets p50/p99/max counters in microseconds.
class Tail {
 public:
  explicit Tail(benchmark::State& state) : state_(state) { samples_.reserve(1 << 16); }
  void start() { t0_ = Clock::now(); }
  void stop() {
    if (samples_.size() < samples_.capacity())
      samples_.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0_).count());
  }
  void report() {
    if (samples_.empty()) return;
    std::sort(samples_.begin(), samples_.end());
    auto at = [&](double p) {
      return samples_[std::min(samples_.size() - 1, static_cast<size_t>(p * samples_.size()))];
    };
    state_.counters["p50_us"] = at(0.50);
    state_.counters["p99_us"] = at(0.99);
    state_.counters["max_us"] = samples_.back();
  }

 private:
  benchmark::State& state_;
  std::vector<double> samples_;
  Clock::time_point t0_;
};

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "micro_bench: cannot read %s; run bench/micro/capture.py first\n",
                 path.c_str());
    std::exit(2);
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The snapshot store filled with the captured sections, as the plugins would publish them.
struct Sections {
  bb::SnapshotStore store;
  Sections() {
    const std::string dir = BB_BENCH_DATA_DIR;
    for (const char* name : {"network.metrics", "network.peers", "receipts.operations",
                             "compute.market", "storage.market", "energy.market", "ads.market"}) {
      std::string n = name;
      std::string body = readFile(dir + "/" + n + ".json");
      store.publish(n, n.substr(0, n.find('.')), body,
                    body.find("\"timestamp\"") != std::string::npos,
                    std::chrono::milliseconds(60000));
    }
  }
};

Sections& sections() {
  static Sections s;
  return s;
}

bb::DashboardApi& api() {
  // Only the store is needed while every section has data (the 503 path reads the plugins).
  static bb::DashboardApi a(bb::ApiContext{"bench", "", &sections().store});
  return a;
}

// GET of a section endpoint: the store lookup, the render and the response object.
void BM_SectionBody(benchmark::State& state, const char* name) {
  Tail tail(state);
  size_t bytes = 0;
  for (auto _ : state) {
    tail.start();
    bb::HttpResponse r = api().section(name);
    tail.stop();
    bytes = r.body.size();
    benchmark::DoNotOptimize(r);
  }
  state.counters["body_bytes"] = static_cast<double>(bytes);
  tail.report();
}
BENCHMARK_CAPTURE(BM_SectionBody, network_metrics, "network.metrics");
BENCHMARK_CAPTURE(BM_SectionBody, peers_list, "network.peers");
BENCHMARK_CAPTURE(BM_SectionBody, operations, "receipts.operations");

// SnapshotStore::renderBody alone on the network section (no lookup, no response object).
void BM_RenderBody(benchmark::State& state) {
  bb::SectionPtr s = sections().store.get("network.metrics");
  Tail tail(state);
  for (auto _ : state) {
    tail.start();
    std::string body = bb::SnapshotStore::renderBody(*s, Clock::now());
    tail.stop();
    benchmark::DoNotOptimize(body);
  }
  tail.report();
}
BENCHMARK(BM_RenderBody);

void BM_MarketsHealth(benchmark::State& state) {
  Tail tail(state);
  size_t bytes = 0;
  for (auto _ : state) {
    tail.start();
    std::string body = api().marketsHealth();
    tail.stop();
    bytes = body.size();
    benchmark::DoNotOptimize(body);
  }
  state.counters["body_bytes"] = static_cast<double>(bytes);
  tail.report();
}
BENCHMARK(BM_MarketsHealth);

// --- /metrics ---------------------------------------------------------------------------------

// A registry with `series` plugin series on top of the agent's self-metrics: 50 gauge families
// of series/50 label values each, spread over five plugins (a plugin's cap is 2 000 by default).
std::unique_ptr<bb::Metrics> metricsWith(int series) {
  auto m = std::make_unique<bb::Metrics>("bench", 2000);
  for (const char* p : {"network", "compute", "storage", "energy", "ads", "receipts"}) {
    m->pluginLoaded(p, "1.0.0", 2.0);
    m->pluginCollect(p, 0.012, true);
    m->pluginUp(p, true);
  }
  for (const char* method : {"net.peers", "net.stats", "light.latest_header", "receipt.audit"})
    m->rpcCall(method, "ok", 0.002);
  const int families = 50;
  const int per_family = series / families;
  for (int f = 0; f < families; ++f) {
    std::string plugin = std::string("plugin") + static_cast<char>('a' + f % 5);
    bb::MetricUpdate u;
    u.name = "bench_family_" + std::to_string(f) + "_value";
    u.help = "A plugin gauge of the benchmark.";
    for (int i = 0; i < per_family; ++i) {
      u.labels = {{"peer", "peer-" + std::to_string(i)}, {"market", "compute"}};
      u.value = i * 1.5;
      bb::MetricResult r = m->applyPluginMetric(plugin, u);
      if (!r.ok()) {
        std::fprintf(stderr, "micro_bench: applyPluginMetric refused: %s\n", r.why.c_str());
        std::exit(2);
      }
    }
  }
  return m;
}

void BM_MetricsSerialize(benchmark::State& state) {
  auto m = metricsWith(static_cast<int>(state.range(0)));
  Tail tail(state);
  size_t bytes = 0;
  for (auto _ : state) {
    tail.start();
    std::string text = m->serialize();
    tail.stop();
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.counters["body_bytes"] = static_cast<double>(bytes);
  tail.report();
}
BENCHMARK(BM_MetricsSerialize)->Arg(0)->Unit(benchmark::kMillisecond);
// Enough scrapes for a p99 that is not just the maximum.
BENCHMARK(BM_MetricsSerialize)->Arg(5000)->MinTime(2.0)->Unit(benchmark::kMillisecond);

// One plugin update of an existing series (what a plugin's collect does per figure).
void BM_MetricsApplyExisting(benchmark::State& state) {
  auto m = metricsWith(5000);
  bb::MetricUpdate u;
  u.name = "bench_family_7_value";
  u.help = "A plugin gauge of the benchmark.";
  u.labels = {{"peer", "peer-42"}, {"market", "compute"}};
  Tail tail(state);
  double v = 0;
  for (auto _ : state) {
    u.value = ++v;
    tail.start();
    bb::MetricResult r = m->applyPluginMetric("pluginc", u);
    tail.stop();
    benchmark::DoNotOptimize(r);
  }
  tail.report();
}
BENCHMARK(BM_MetricsApplyExisting);

// --- receipts ---------------------------------------------------------------------------------

namespace rc = blockbuster::receipts;

// A temporary SQLite file with `count` receipts over the four markets, made once per process
// (through ReceiptStore::ingest: bench/lib/receipt_fill.h).
struct ReceiptFile {
  std::string dir;
  std::string path;
  std::unique_ptr<rc::ReceiptStore> store;
  explicit ReceiptFile(int count) {
    char tmpl[] = "/tmp/bb-micro-receipts-XXXXXX";
    dir = mkdtemp(tmpl);
    path = dir + "/receipts.db";
    store = std::make_unique<rc::ReceiptStore>(path, rc::RetentionPolicy{0, 0});
    bbbench::fillReceipts(*store, count);
  }
  ~ReceiptFile() {
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

constexpr int kReceipts = 1000000;

ReceiptFile& receiptFile() {
  static ReceiptFile f(kReceipts);
  return f;
}

// A page of 100 at an offset (the argument; 0 = the newest) of the million-receipt file, with
// its total, straight on SQLite (no cache): ReceiptStore::query finds the page's first row in the
// order index and reads 100 rows from there. Energy holds a quarter of the file, so its deepest
// page is at 249 900.
void BM_ReceiptPageAtOffset(benchmark::State& state, const char* market) {
  auto& f = receiptFile();
  rc::ReceiptQuery q;
  q.limit = 100;
  q.offset = state.range(0);
  q.market = market;
  Tail tail(state);
  for (auto _ : state) {
    tail.start();
    rc::ReceiptPage page = f.store->query(q);
    tail.stop();
    if (page.receipts.size() != 100) state.SkipWithError("the page is not 100 receipts long");
    benchmark::DoNotOptimize(page);
  }
  state.counters["receipts_in_file"] = kReceipts;
  tail.report();
}
BENCHMARK_CAPTURE(BM_ReceiptPageAtOffset, all_markets, "")
    ->Arg(0)
    ->Arg(500000)
    ->Arg(999900)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ReceiptPageAtOffset, market_energy, "energy")
    ->Arg(0)
    ->Arg(125000)
    ->Arg(249900)
    ->Unit(benchmark::kMicrosecond);

// The same deep pages walked with the cursor: before=<next of the page above>.
void BM_ReceiptPageBeforeCursor(benchmark::State& state, const char* market) {
  auto& f = receiptFile();
  rc::ReceiptQuery above;
  above.limit = 100;
  above.offset = state.range(0) - 100;
  above.market = market;
  rc::ReceiptQuery q;
  q.limit = 100;
  q.market = market;
  q.before = f.store->query(above).next;
  Tail tail(state);
  for (auto _ : state) {
    tail.start();
    rc::ReceiptPage page = f.store->query(q);
    tail.stop();
    if (page.receipts.size() != 100 || page.offset != state.range(0))
      state.SkipWithError("the cursor's page is not the 100 receipts at the offset");
    benchmark::DoNotOptimize(page);
  }
  tail.report();
}
BENCHMARK_CAPTURE(BM_ReceiptPageBeforeCursor, all_markets, "")
    ->Arg(999900)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ReceiptPageBeforeCursor, market_energy, "energy")
    ->Arg(249900)
    ->Unit(benchmark::kMicrosecond);

// GET /theblock/receipts?limit=100 as the plugin answers it: ReceiptsService::handleReceipts,
// whose rendered page is cached until the store changes (the steady state between ingests).
void BM_ReceiptsHandleCached(benchmark::State& state, const char* market) {
  auto& f = receiptFile();
  rc::ServiceOptions options;
  options.db_path = f.path;
  options.retention = rc::RetentionPolicy{0, 0};
  static std::unique_ptr<rc::ReceiptsService> service;
  if (!service) service = std::make_unique<rc::ReceiptsService>(options);
  std::vector<std::pair<std::string, std::string>> query{{"limit", "100"}};
  if (*market) query.emplace_back("market", market);
  Tail tail(state);
  size_t bytes = 0;
  for (auto _ : state) {
    tail.start();
    rc::HttpAnswer a = service->handleReceipts(query, 1700000000);
    tail.stop();
    if (a.status != 200) state.SkipWithError("handleReceipts did not answer 200");
    bytes = a.body.size();
    benchmark::DoNotOptimize(a);
  }
  state.counters["body_bytes"] = static_cast<double>(bytes);
  tail.report();
}
BENCHMARK_CAPTURE(BM_ReceiptsHandleCached, all_markets, "");
BENCHMARK_CAPTURE(BM_ReceiptsHandleCached, market_energy, "energy");

// --- routing ----------------------------------------------------------------------------------

void BM_RouterHandle(benchmark::State& state, const char* path, const char* query) {
  static bb::Router router = [] {
    bb::Router r;
    r.get("/health",
          [](const bb::HttpRequest&) { return bb::HttpResponse::json("{\"ok\":true}"); });
    r.get("/theblock/network/metrics",
          [](const bb::HttpRequest&) { return bb::HttpResponse::json("{\"ok\":true}"); });
    r.get("/theblock/receipts", [](const bb::HttpRequest&) { return bb::HttpResponse::json("{}"); },
          {"limit", "offset", "market"});
    return r;
  }();
  Tail tail(state);
  for (auto _ : state) {
    bb::HttpRequest req;
    req.method = "GET";
    req.path = path;
    req.raw_query = query;
    req.origin = "http://localhost:4173";
    tail.start();
    bb::HttpResponse r = router.handle(std::move(req));
    tail.stop();
    benchmark::DoNotOptimize(r);
  }
  tail.report();
}
BENCHMARK_CAPTURE(BM_RouterHandle, simple, "/health", "");
BENCHMARK_CAPTURE(BM_RouterHandle, with_query, "/theblock/receipts", "limit=100&market=energy");

}  // namespace

BENCHMARK_MAIN();
