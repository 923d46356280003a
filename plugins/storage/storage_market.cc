#include "storage_market.h"

#include <blockbuster/plugin_abi.h>

#include <chrono>
#include <set>
#include <stdexcept>
#include <string>

namespace blockbuster::markets {
namespace {

void addFigures(MarketReport& r) {
  auto f = [&](const char* name) { return valueOrNaN(r, name); };
  r.metrics.push_back({"theblock_storage_stored_bytes",
                       "Bytes stored in the storage market as the node reports them.",
                       f("total_stored"),
                       {}});
  r.metrics.push_back(
      {kProvidersMetric, kProvidersHelp, f("total_providers"), {{"market", "storage"}}});
  r.metrics.push_back({kAvgPriceMetric, kAvgPriceHelp, f("avg_price"), {{"market", "storage"}}});
  r.metrics.push_back(
      {kUtilizationMetric, kUtilizationHelp, f("capacity_used"), {{"market", "storage"}}});
  r.metrics.push_back({"theblock_storage_advertised_capacity_bytes",
                       "Capacity the real node's discovered storage providers advertise.",
                       f("advertised_capacity_bytes"),
                       {}});
  r.features.push_back({"stored_bytes", f("total_stored")});
  r.features.push_back({"providers", f("total_providers")});
  r.features.push_back({"capacity_used", f("capacity_used")});
}

}  // namespace

StorageMarket::StorageMarket(StorageOptions options)
    : MarketBase({"storage",
                  {"total_stored", "total_providers", "avg_price", "capacity_used"},
                  {"advertised_capacity_bytes", "manifests", "contracts"},
                  kStorageStats,
                  {kStorageIncentives, kStorageDiscover, kStorageManifests},
                  "the node serves no storage market: neither storage.stats nor "
                  "storage_incentives (both answered method not found)"}),
      options_(options),
      clock_([] {
        return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
            .count();
      }) {
  if (options_.discovery_interval < 600 || options_.discovery_interval > 7 * 86400)
    throw std::invalid_argument(
        "storage option discovery_interval must be 600..604800 seconds (each read opens the "
        "node's storage pipeline and leaks a node thread; the agent never reads it more than "
        "once per 600 s), got " +
        std::to_string(options_.discovery_interval));
  if (options_.provider_limit < 1 || options_.provider_limit > 100000)
    throw std::invalid_argument("storage option provider_limit must be 1..100000, got " +
                                std::to_string(options_.provider_limit));
  if (options_.manifest_limit < 1 || options_.manifest_limit > 1000)
    throw std::invalid_argument(
        "storage option manifest_limit must be 1..1000 (the node's cap), got " +
        std::to_string(options_.manifest_limit));
}

bool StorageMarket::due(const Kept& k) const {
  return !k.value || clock_() - k.as_of >= static_cast<double>(options_.discovery_interval);
}

void StorageMarket::keep(const Answers& answers, const char* method, Kept& k) {
  auto it = answers.find(method);
  if (it == answers.end()) {
    if (!k.value) k.why = std::string(method) + " has not been read yet";
    return;
  }
  std::string why;
  Answers one{{method, it->second}};
  if (auto v = objectAnswer(one, method, &why)) {
    k.value = *v;
    k.as_of = clock_();
    k.why.clear();
  } else {
    // Kept: the last answer stays with its own age; the reason says why it is not newer.
    k.why = why;
  }
}

std::vector<Call> StorageMarket::plan() const {
  std::vector<Call> calls;
  if (profile_ != Profile::kTheBlock) calls.push_back({kStorageStats, Json::object()});
  if (profile_ != Profile::kSpec) {
    // Every cycle: the market's contracts, read without opening the storage pipeline.
    calls.push_back({kStorageIncentives, Json::object()});
    // Once per discovery_interval: the two reads that open the pipeline (the agent's method
    // policy runs them one at a time, detached from this cycle's deadline).
    if (profile_ == Profile::kTheBlock) {
      // object_size 1: every provider able to store anything at all.
      if (due(discover_))
        calls.push_back(
            {kStorageDiscover,
             Json{{"object_size", 1}, {"shares", 1}, {"limit", options_.provider_limit}}});
      if (due(manifests_))
        calls.push_back({kStorageManifests, Json{{"limit", options_.manifest_limit}}});
    }
    if (options_.governor && profile_ == Profile::kTheBlock)
      calls.push_back({kGovernorMethod, Json::object()});
  }
  return calls;
}

Profile StorageMarket::shapeOf(const Json& v) const {
  if (!v.isObject()) return Profile::kUnknown;
  for (const char* k : {"total_stored", "providers", "avg_price", "capacity_used"})
    if (v.contains(k)) return Profile::kSpec;
  return Profile::kUnknown;
}

void StorageMarket::addFigureMetrics(MarketReport& r) const { addFigures(r); }

// A real node that stopped answering: its pipeline answers are not kept for the next one.
void StorageMarket::lost(Profile was) {
  if (was == Profile::kTheBlock) discover_ = manifests_ = Kept{};
}

void StorageMarket::spec(const Json& stats, MarketReport& r) {
  r.set("total_stored", readCount(stats, "total_stored", kStorageStats));
  r.set("total_providers", readCount(stats, "providers", kStorageStats));
  r.set("avg_price", readCount(stats, "avg_price", kStorageStats));
  r.set("capacity_used", readRatio(stats, "capacity_used", kStorageStats));
  r.extras.clear();  // the real node's extra figures do not exist on this profile
  decide(r);
}

void StorageMarket::theblock(const Json&, const Answers& answers, MarketReport& r) {
  keep(answers, kStorageDiscover, discover_);
  keep(answers, kStorageManifests, manifests_);
  const std::string pending =
      " (it opens the node's storage pipeline, so it is read once per discovery_interval)";
  // The kept answers of the pipeline reads, each with its own age.
  Answers kept;
  for (const auto& [method, k] : {std::pair<const char*, const Kept*>{kStorageDiscover, &discover_},
                                  {kStorageManifests, &manifests_}}) {
    kept[method] = k->value ? Answer::result(*k->value) : Answer::failure(BB_ERR_TIMEOUT, k->why);
  }
  Json as_of = Json::object();
  if (discover_.value)
    for (const char* f : {"total_providers", "avg_price", "advertised_capacity_bytes"})
      as_of[f] = static_cast<int64_t>(discover_.as_of);
  if (manifests_.value)
    for (const char* f : {"total_stored", "manifests"})
      as_of[f] = static_cast<int64_t>(manifests_.as_of);
  r.info["as_of"] = as_of;
  r.info["discovery_interval_seconds"] = options_.discovery_interval;

  std::string why;
  if (auto disc = objectAnswer(kept, kStorageDiscover, &why)) {
    const Json& list = (*disc)["providers"];
    const char* src = "storage.discover_providers.providers";
    if (!list.isArray()) {
      for (const char* f : {"total_providers", "avg_price", "advertised_capacity_bytes"})
        r.set(f, Figure::none(std::string(src) + " is not a list"));
    } else {
      // The node can list one provider twice: count, price and capacity go by provider id.
      std::set<std::string> seen;
      double priceSum = 0, capacity = 0;
      Figure price = Figure::of(0), cap = Figure::of(0), count = Figure::of(0);
      size_t i = 0;
      for (const Json& p : list.asArray()) {
        std::string at = std::string(src) + "[" + std::to_string(i++) + "]";
        const Json& id = p["provider"];
        if (!id.isString() || id.asString().empty()) {
          count = price = cap = Figure::none(at + ".provider is not a non-empty string");
          break;
        }
        if (!seen.insert(id.asString()).second) continue;
        Figure pp = readCount(p, "price_per_block", at);
        Figure cb = readCount(p, "capacity_bytes", at);
        if (!pp.known() && price.known()) price = pp;
        if (!cb.known() && cap.known()) cap = cb;
        if (pp.known()) priceSum += *pp.value;
        if (cb.known()) capacity += *cb.value;
      }
      if (count.known()) count = Figure::of(static_cast<double>(seen.size()));
      if (price.known())
        price = seen.empty() ? Figure::none("no storage provider advertises a price")
                             : Figure::of(priceSum / static_cast<double>(seen.size()));
      if (cap.known()) cap = Figure::of(capacity);
      // A full page may hide more providers: its totals would understate the market.
      if (list.size() >= static_cast<size_t>(options_.provider_limit)) {
        std::string cut = "storage.discover_providers returned its limit of " +
                          std::to_string(options_.provider_limit) +
                          " providers, so the total is unknown (raise provider_limit)";
        count = Figure::none(cut);
        cap = Figure::none(cut);
      }
      r.set("total_providers", count);
      r.set("avg_price", price);
      r.set("advertised_capacity_bytes", cap);
    }
  } else {
    for (const char* f : {"total_providers", "avg_price", "advertised_capacity_bytes"})
      r.set(f, Figure::none(why + pending));
  }

  if (auto man = objectAnswer(kept, kStorageManifests, &why)) {
    const Json& list = (*man)["manifests"];
    if (list.isArray() && list.size() >= static_cast<size_t>(options_.manifest_limit)) {
      std::string cut = "storage.manifests returned its limit of " +
                        std::to_string(options_.manifest_limit) +
                        " manifests, so the total is unknown";
      r.set("total_stored", Figure::none(cut));
      r.set("manifests", Figure::none(cut));
    } else {
      r.set("total_stored", sumOf(list, "total_len", "storage.manifests.manifests"));
      r.set("manifests", list.isArray()
                             ? Figure::of(static_cast<double>(list.size()))
                             : Figure::none("storage.manifests.manifests is not a list"));
    }
  } else {
    r.set("total_stored", Figure::none(why + pending));
    r.set("manifests", Figure::none(why + pending));
  }

  // Contracts in force, every cycle and without the pipeline: distinct objects with replicas.
  std::string iwhy;
  if (auto inc = objectAnswer(answers, kStorageIncentives, &iwhy)) {
    const Json& replicas = (*inc)["replicas"];
    Figure contracts = countDistinct(replicas, {"object_id"}, "storage_incentives.replicas");
    if (replicas.isArray() && replicas.size() == 0) contracts = Figure::of(0);
    r.set("contracts", contracts);
  } else {
    r.set("contracts", Figure::none(iwhy));
  }

  r.set("capacity_used", governorUtilization(answers, "storage"));
  r.info["capacity_used_source"] = "governor.status";
  decide(r);
}

// Healthy: someone offers storage and it is in use (bytes stored or capacity used), or the
// stored bytes changed since the previous sample. Unknown providers do not veto.
void StorageMarket::decide(MarketReport& r) {
  const Figure& stored = *r.figure("total_stored");
  const Figure& providers = *r.figure("total_providers");
  const Figure& used = *r.figure("capacity_used");
  // Only the real node has contracts (an extra); the spec profile clears extras.
  const Figure none = Figure::none("not on this profile");
  const Figure& contracts = r.figure("contracts") ? *r.figure("contracts") : none;
  bool moved = changed(prev_stored_, stored);
  if (stored.known()) prev_stored_ = stored.value;
  std::string error;
  Status any = decideStatus({&stored, &providers, &used, &contracts}, false, &error);
  if (any == Status::kUnavailable) {
    r.markUnavailable(error);
    return;
  }
  bool supply = !providers.known() || *providers.value > 0;
  bool inUse = stored.positive() || used.positive() || contracts.positive();
  r.status = (supply && inUse) || moved ? Status::kHealthy : Status::kIdle;
}

}  // namespace blockbuster::markets
