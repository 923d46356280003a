// The fleet test (ctest -L fleet): several nodes, one Prometheus, one Alertmanager, as an
// operator sets them up from docs/fleet.md.
//
// Three bb-devnodes with different chains and an agent for each:
//   alpha   the healthy leader (4 blocks/s from height 1000),
//   bravo   a chain that stalls: as fast as alpha until the test calls the node's admin
//           method stop_mining, no block after that,
//   charlie behind and falling further (2 blocks/s from height 800);
// a real Prometheus running the shipped prometheus.yml (file-based service discovery with a
// `node` label per target) and the shipped alerts.yml, both with their minutes shortened
// (shortenDurations: 10m -> 20s) and nothing else changed; a real Alertmanager running the
// shipped alertmanager.yml. Then:
//   - every query of the fleet dashboard's "Fleet overview" row returns one series per node;
//   - TheBlockChainStalled fires for bravo only, TheBlockNodeBehind for charlie only (bravo,
//     stalled and by then far behind too, is left to the stall alert);
//   - alpha's node goes down: Alertmanager shows one active alert for alpha
//     (BlockbusterNodeUnreachable), its plugin and staleness alerts suppressed.
//
// Needs Debian's `prometheus` and `prometheus-alertmanager` (tools/setup.sh --test). Talks to
// loopback only; every wait is bounded.
#include <blockbuster/json.h>
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "integration/stack.h"
#include "prom_support.h"
#include "support/process.h"

namespace {

using bbtest::TempDir;
using blockbuster::Json;
using std::chrono::seconds;

const std::set<std::string> kNodes{"alpha", "bravo", "charlie"};

// One node of the fleet: a bb-devnode and the agent polling it.
struct FleetNode {
  FleetNode(std::string name_, const std::string& profile, std::vector<std::string> flags)
      : name(std::move(name_)),
        node(std::make_unique<bbtest::DevNode>(profile, std::move(flags))),
        agent(home, node->url()) {}
  std::string target() const { return "127.0.0.1:" + std::to_string(agent.port()); }

  std::string name;
  TempDir home;
  std::unique_ptr<bbtest::DevNode> node;
  bbtest::Agent agent;
};

// `text` with `from` replaced by `to` everywhere; a failure when `from` is not there (the
// shipped file changed and the test would silently run it unchanged).
std::string replaceAll(std::string text, const std::string& from, const std::string& to) {
  EXPECT_NE(text.find(from), std::string::npos) << "'" << from << "' not found";
  for (size_t pos = text.find(from); pos != std::string::npos;
       pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}

std::string label(const Json& labels, const std::string& name) {
  return labels[name].isString() ? labels[name].asString() : "";
}

// Prometheus's alerts of `alertname` in `state` (firing, pending), by node.
std::multiset<std::string> promAlerts(const bbtest::PrometheusServer& prometheus,
                                      const std::string& alertname, const std::string& state) {
  std::multiset<std::string> out;
  auto body = prometheus.get("/api/v1/alerts");
  for (const auto& a : body["data"]["alerts"].asArray()) {
    if (label(a["labels"], "alertname") == alertname && a["state"].asString() == state)
      out.insert(label(a["labels"], "node"));
  }
  return out;
}

std::string dump(const std::multiset<std::string>& nodes) {
  std::string out = "{";
  for (const auto& n : nodes) out += (out.size() > 1 ? "," : "") + n;
  return out + "}";
}

TEST(FleetConfigTest, AlertmanagerConfigPassesAmtool) {
  auto check = bbtest::runProgram(
      {bbtest::kAmtoolBin, "check-config",
       std::string(BB_TEST_SOURCE_DIR) + "/packaging/alertmanager/alertmanager.yml"});
  EXPECT_EQ(check.first, 0) << check.second << bbtest::kPrometheusInstallHint;
  EXPECT_NE(check.second.find("SUCCESS"), std::string::npos) << check.second;
  EXPECT_NE(check.second.find("2 inhibit rules"), std::string::npos) << check.second;
}

// docs/fleet.md's Prometheus examples (federation, remote_write), each a ```yaml block that
// starts with "# prometheus.yml", are valid configs.
TEST(FleetConfigTest, FleetDocExamplesPassPromtool) {
  std::string doc = bbtest::sourceFile("docs/fleet.md");
  static const std::regex kBlock("```yaml\n(# prometheus\\.yml[^\n]*\n[\\s\\S]*?)```");
  std::vector<std::string> blocks;
  for (std::sregex_iterator it(doc.begin(), doc.end(), kBlock), end; it != end; ++it)
    blocks.push_back((*it)[1].str());
  ASSERT_GE(blocks.size(), 2u) << "docs/fleet.md: no ```yaml block starting with # prometheus.yml";
  bool federation = false, remote_write = false;
  for (const auto& block : blocks) {
    federation = federation || block.find("/federate") != std::string::npos;
    remote_write = remote_write || block.find("remote_write:") != std::string::npos;
    TempDir dir;
    dir.write("prometheus.yml", block);
    // Examples may name the shipped rules file next to them.
    dir.write("alerts.yml", bbtest::sourceFile("packaging/prometheus/alerts.yml"));
    auto check =
        bbtest::runProgram({bbtest::kPromtoolBin, "check", "config", dir.file("prometheus.yml")});
    EXPECT_EQ(check.first, 0) << "docs/fleet.md example:\n"
                              << block << "\npromtool: " << check.second
                              << bbtest::kPrometheusInstallHint;
  }
  EXPECT_TRUE(federation) << "docs/fleet.md has no federation example (/federate)";
  EXPECT_TRUE(remote_write) << "docs/fleet.md has no remote_write example";
}

TEST(FleetTest, ThreeNodesOnePrometheusOneAlertmanager) {
  FleetNode alpha("alpha", "theblock",
                  {"--seed", "11", "--block-ms", "250", "--start-height", "1000"});
  FleetNode bravo("bravo", "theblock",
                  {"--seed", "22", "--block-ms", "250", "--start-height", "1000"});
  FleetNode charlie("charlie", "spec",
                    {"--seed", "33", "--block-ms", "500", "--start-height", "800"});
  std::vector<FleetNode*> fleet{&alpha, &bravo, &charlie};

  // Alertmanager with the shipped config, unchanged; no cluster (loopback only).
  TempDir amdir;
  std::unique_ptr<bbtest::ApiServer> alertmanager;
  ASSERT_NO_THROW(alertmanager = std::make_unique<bbtest::ApiServer>(
                      bbtest::kAlertmanagerBin,
                      std::vector<std::string>{"--config.file=" + std::string(BB_TEST_SOURCE_DIR) +
                                                   "/packaging/alertmanager/alertmanager.yml",
                                               "--storage.path=" + amdir.file("data"),
                                               "--cluster.listen-address="},
                      "Listening on"));

  // Prometheus as shipped but faster: scrapes and evaluations every second (15 s shipped), rule
  // durations 30 times shorter, the Alertmanager above, the targets in targets/fleet.yml.
  TempDir dir;
  std::string config = bbtest::sourceFile("packaging/prometheus/prometheus.yml");
  config = replaceAll(config, "15s", "1s");
  config = replaceAll(config, "scrape_timeout: 10s", "scrape_timeout: 1s");
  config = replaceAll(config, "localhost:9093", alertmanager->address());
  EXPECT_NE(config.find("files: [\"targets/*.yml\"]"), std::string::npos)
      << "the shipped prometheus.yml no longer reads its targets from targets/*.yml";
  dir.write("prometheus.yml", config);
  std::string rules =
      bbtest::shortenDurations(bbtest::sourceFile("packaging/prometheus/alerts.yml"));
  dir.write("alerts.yml", rules);
  std::string targets;
  for (const auto* n : fleet)
    targets += "- targets: [\"" + n->target() + "\"]\n  labels:\n    node: " + n->name + "\n";
  std::filesystem::create_directories(dir.file("targets"));
  dir.write("targets/fleet.yml", targets);
  auto check =
      bbtest::runProgram({bbtest::kPromtoolBin, "check", "config", dir.file("prometheus.yml")});
  ASSERT_EQ(check.first, 0) << check.second << bbtest::kPrometheusInstallHint;

  std::unique_ptr<bbtest::PrometheusServer> server;
  ASSERT_NO_THROW(server = std::make_unique<bbtest::PrometheusServer>(dir.file("prometheus.yml"),
                                                                      dir.file("data")));
  auto& prometheus = *server;

  // The three agents found through the targets file and scraped, each with its node label.
  ASSERT_TRUE(bbtest::eventually(
      [&] {
        auto r = prometheus.query("up{job=\"blockbuster\"} == 1");
        std::set<std::string> up;
        for (const auto& s : r.asArray()) up.insert(label(s["metric"], "node"));
        return up == kNodes;
      },
      seconds(30)))
      << prometheus.get("/api/v1/targets").dump();

  // --- every fleet panel query: one series per node ---------------------------------------
  auto dash = bbtest::loadDashboard("blockbuster-fleet.json");
  std::vector<bbtest::PanelQuery> fleet_queries;
  for (auto& q : bbtest::checkDashboard(dash))
    if (q.row == "Fleet overview") fleet_queries.push_back(q);
  ASSERT_GE(fleet_queries.size(), 12u) << "the fleet overview row lost its queries";
  std::map<size_t, std::string> wrong;  // query index -> last answer
  for (size_t i = 0; i < fleet_queries.size(); ++i) wrong[i] = "(not asked yet)";
  bbtest::eventually(
      [&] {
        for (auto it = wrong.begin(); it != wrong.end();) {
          std::string body;
          auto result =
              prometheus.query(bbtest::grafanaExpr(fleet_queries[it->first].expr), nullptr, &body);
          std::multiset<std::string> nodes;
          for (const auto& s : result.asArray()) nodes.insert(label(s["metric"], "node"));
          if (nodes == std::multiset<std::string>(kNodes.begin(), kNodes.end())) {
            it = wrong.erase(it);
          } else {
            it->second = "nodes " + dump(nodes) + ": " + body;
            ++it;
          }
        }
        return wrong.empty();
      },
      seconds(60), std::chrono::milliseconds(500));
  for (const auto& [i, answer] : wrong) {
    ADD_FAILURE() << "fleet panel '" << fleet_queries[i].panel
                  << "' does not return one series per node: "
                  << bbtest::grafanaExpr(fleet_queries[i].expr) << "\n  last answer: " << answer;
  }

  // docs/fleet.md's cardinality: no node above 800 series (agent's own plus Prometheus's).
  {
    auto per_node = prometheus.query("count by (node) ({job=\"blockbuster\"})");
    EXPECT_EQ(per_node.size(), kNodes.size()) << per_node.dump();
    for (const auto& s : per_node.asArray()) {
      double n = std::stod(s["value"][1].asString());
      std::printf("series of %s: %.0f\n", label(s["metric"], "node").c_str(), n);
      EXPECT_LE(n, 800) << label(s["metric"], "node")
                        << ": more series than docs/fleet.md's cardinality section says";
    }
  }

  // --- stalled chain and node behind the fleet, for the right node only ---------------------
  // Every chain grows and the stall rule has its window of data (the fleet queries above
  // waited for "Blocks in 10 min"): no stall alert, pending or firing.
  for (const char* state : {"firing", "pending"})
    EXPECT_EQ(promAlerts(prometheus, "TheBlockChainStalled", state).size(), 0u) << state;
  // Bravo's chain stops, as a node's does when block production halts.
  auto stop =
      bbtest::httpRequest(bravo.node->port(), "POST", "/", {{"Content-Type", "application/json"}},
                          R"({"jsonrpc":"2.0","id":1,"method":"stop_mining","params":{}})");
  ASSERT_EQ(stop.status, 200) << stop.body;
  ASSERT_NE(stop.body.find("\"ok\""), std::string::npos) << stop.body;
  const std::multiset<std::string> just_bravo{"bravo"}, just_charlie{"charlie"};
  EXPECT_TRUE(bbtest::eventually(
      [&] {
        return promAlerts(prometheus, "TheBlockChainStalled", "firing") == just_bravo &&
               promAlerts(prometheus, "TheBlockNodeBehind", "firing") == just_charlie;
      },
      seconds(90)))
      << "stalled: " << dump(promAlerts(prometheus, "TheBlockChainStalled", "firing"))
      << " behind: " << dump(promAlerts(prometheus, "TheBlockNodeBehind", "firing")) << "\n"
      << prometheus.get("/api/v1/alerts").dump();

  // Bravo is far behind by now too: once it has been more than 100 blocks behind for longer
  // than the (shortened) `for:`, it still has no TheBlockNodeBehind, pending or firing.
  const std::string bravo_behind =
      "min_over_time((scalar(max(theblock_block_height)) - "
      "theblock_block_height{node=\"bravo\"})[12s:1s]) > 100";
  EXPECT_TRUE(
      bbtest::eventually([&] { return prometheus.query(bravo_behind).size() == 1; }, seconds(60)))
      << prometheus.query("scalar(max(theblock_block_height)) - theblock_block_height").dump();
  for (const char* state : {"firing", "pending"}) {
    EXPECT_EQ(promAlerts(prometheus, "TheBlockNodeBehind", state).count("bravo"), 0u) << state;
    EXPECT_EQ(promAlerts(prometheus, "TheBlockNodeBehind", state).count("alpha"), 0u) << state;
    EXPECT_EQ(promAlerts(prometheus, "TheBlockChainStalled", state).count("alpha"), 0u) << state;
    EXPECT_EQ(promAlerts(prometheus, "TheBlockChainStalled", state).count("charlie"), 0u) << state;
  }
  EXPECT_EQ(promAlerts(prometheus, "TheBlockChainStalled", "firing"), just_bravo);
  EXPECT_EQ(promAlerts(prometheus, "TheBlockNodeBehind", "firing"), just_charlie);

  // The fleet dashboard's firing-alerts table lists them.
  for (const auto& q : bbtest::checkDashboard(dash)) {
    if (q.row != "Alerts") continue;
    std::set<std::pair<std::string, std::string>> listed;
    const Json result = prometheus.query(bbtest::grafanaExpr(q.expr));
    for (const auto& s : result.asArray())
      listed.insert({label(s["metric"], "alertname"), label(s["metric"], "node")});
    EXPECT_TRUE(listed.count({"TheBlockChainStalled", "bravo"}))
        << q.panel << ": " << result.dump();
    EXPECT_TRUE(listed.count({"TheBlockNodeBehind", "charlie"}))
        << q.panel << ": " << result.dump();
  }

  // --- alpha's node goes down: one alert in Alertmanager --------------------------------------
  // Unmuted, this outage was 13 alerts: the node's, and one BlockbusterPluginDown and one
  // BlockbusterDataStale per plugin.
  const Json loaded = prometheus.query("blockbuster_plugin_info{node=\"alpha\"}");
  const size_t plugins = loaded.size();
  ASSERT_EQ(plugins, 6u) << loaded.dump();
  alpha.node->process().signal(SIGKILL);
  alpha.node->process().wait(seconds(5));

  // Every poll from now on: alpha's only active alert may be BlockbusterNodeUnreachable. Done
  // when it is active, every plugin's BlockbusterPluginDown has arrived suppressed by it, and
  // so has every other alert Prometheus fires for alpha (BlockbusterDataStale of each plugin
  // whose data the agent calls stale: the receipts plugin's stored receipts do not go stale).
  using Alert = std::pair<std::string, std::string>;  // alertname, plugin
  std::set<std::string> wrongly_active;
  Json last;
  std::set<Alert> firing, suppressed;
  bool done = bbtest::eventually(
      [&] {
        firing.clear();
        suppressed.clear();
        const Json prom = prometheus.get("/api/v1/alerts");
        for (const auto& a : prom["data"]["alerts"].asArray())
          if (label(a["labels"], "node") == "alpha" && a["state"].asString() == "firing" &&
              label(a["labels"], "alertname") != "BlockbusterNodeUnreachable")
            firing.insert({label(a["labels"], "alertname"), label(a["labels"], "plugin")});
        last = alertmanager->get("/api/v2/alerts");
        if (!last.isArray()) return false;
        std::multiset<std::string> active;
        size_t plugin_down = 0;
        for (const auto& a : last.asArray()) {
          if (label(a["labels"], "node") != "alpha") continue;
          std::string name = label(a["labels"], "alertname");
          std::string state = a["status"]["state"].asString();
          if (state == "active") {
            active.insert(name);
            if (name != "BlockbusterNodeUnreachable") wrongly_active.insert(name);
          } else if (state == "suppressed" && a["status"]["inhibitedBy"].size() > 0) {
            suppressed.insert({name, label(a["labels"], "plugin")});
            if (name == "BlockbusterPluginDown") ++plugin_down;
          }
        }
        return active == std::multiset<std::string>{"BlockbusterNodeUnreachable"} &&
               plugin_down == plugins && firing.count({"BlockbusterDataStale", "network"}) &&
               suppressed == firing;
      },
      seconds(60));
  EXPECT_TRUE(done) << "Alertmanager's alerts:\n"
                    << last.dump() << "\nPrometheus's:\n"
                    << prometheus.get("/api/v1/alerts").dump();
  for (const auto& name : wrongly_active)
    ADD_FAILURE() << name << " of alpha reached Alertmanager active during the outage";

  // Other nodes' alerts are theirs: bravo's stall is still active, not inhibited.
  bool bravo_active = false;
  for (const auto& a : last.asArray())
    bravo_active = bravo_active || (label(a["labels"], "node") == "bravo" &&
                                    label(a["labels"], "alertname") == "TheBlockChainStalled" &&
                                    a["status"]["state"].asString() == "active");
  EXPECT_TRUE(bravo_active) << last.dump();
}

}  // namespace
