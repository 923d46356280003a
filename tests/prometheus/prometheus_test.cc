// The Prometheus side of Block Buster checked with the real tools: promtool on a live scrape of
// the agent and on the alerting rules, a real Prometheus server scraping two agents (one per
// node profile) and answering every query of the Grafana dashboard, and docs/metrics.md against
// the live exposition.
//
// Needs /usr/bin/prometheus and /usr/bin/promtool (Debian's `prometheus` package, installed by
// tools/setup.sh --test).
#include <arpa/inet.h>
#include <blockbuster/json.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/stack.h"
#include "prom_support.h"
#include "support/process.h"

namespace {

using bbtest::Agent;
using bbtest::DevNode;
using bbtest::TempDir;
using std::chrono::seconds;

using bbtest::readFile;

const std::string kSourceDir = BB_TEST_SOURCE_DIR;
const std::string& kPromtool = bbtest::kPromtoolBin;
const std::string& kInstallHint = bbtest::kPrometheusInstallHint;

// One node of a profile and the agent polling it, with the agent's default plugin intervals.
struct Stack {
  explicit Stack(const std::string& profile)
      : node(profile, {"--block-ms", "500"}), agent(home, node.url()) {}
  std::string target() const { return "127.0.0.1:" + std::to_string(agent.port()); }
  std::string scrape() const { return bbtest::httpGet(agent.port(), "/metrics").body; }

  TempDir home;
  DevNode node;
  Agent agent;
};

// --- the text exposition format, as much of it as the checks need --------------------------

struct Family {
  std::string type;
  std::string help;
  std::set<std::string> label_names;  ///< of every sample, `le` excepted
  std::vector<std::map<std::string, std::string>> samples;
};

std::map<std::string, Family> parseExposition(const std::string& text) {
  std::map<std::string, Family> out;
  static const std::regex kLabel(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)")re");
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0) {
      auto rest = line.substr(7);
      auto sp = rest.find(' ');
      out[rest.substr(0, sp)].help = sp == std::string::npos ? "" : rest.substr(sp + 1);
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      out[name].type = type;
      continue;
    }
    if (line[0] == '#') continue;
    auto end = line.find_first_of("{ ");
    std::string name = line.substr(0, end);
    // Histogram samples belong to the family without the suffix.
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        std::string base = name.substr(0, name.size() - s.size());
        if (out.count(base) && out[base].type == "histogram") name = base;
      }
    }
    std::map<std::string, std::string> labels;
    if (end != std::string::npos && line[end] == '{') {
      auto close = line.find("} ", end);
      std::string body = line.substr(end + 1, close - end - 1);
      for (std::sregex_iterator it(body.begin(), body.end(), kLabel), e; it != e; ++it)
        labels[(*it)[1]] = (*it)[2];
    }
    auto& fam = out[name];
    for (const auto& kv : labels)
      if (kv.first != "le") fam.label_names.insert(kv.first);
    fam.samples.push_back(labels);
  }
  return out;
}

std::set<std::string> familyNames(const std::map<std::string, Family>& fams) {
  std::set<std::string> out;
  for (const auto& kv : fams)
    if (!kv.second.samples.empty()) out.insert(kv.first);
  return out;
}

// --- docs/metrics.md ------------------------------------------------------------------------

struct DocRow {
  std::string type;
  std::set<std::string> labels;
  std::string present;  ///< always | spec | theblock | on-event
};

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" `");
  auto e = s.find_last_not_of(" `");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::map<std::string, DocRow> parseDoc(const std::string& text) {
  std::map<std::string, DocRow> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> cells;
    std::istringstream row(line.substr(1));
    for (std::string cell; std::getline(row, cell, '|');) cells.push_back(trim(cell));
    if (cells.size() < 5) continue;
    DocRow r;
    r.type = cells[1];
    std::istringstream labels(cells[2]);
    for (std::string l; std::getline(labels, l, ',');) {
      l = trim(l);
      if (!l.empty() && l != "—") r.labels.insert(l);
    }
    r.present = cells[3];
    out[cells[0]] = r;
  }
  return out;
}

// The families the doc says must be exposed against a node of `profile`, and those it says
// must not be.
std::set<std::string> requiredFamilies(const std::map<std::string, DocRow>& doc,
                                       const std::string& profile) {
  std::set<std::string> out;
  for (const auto& kv : doc)
    if (kv.second.present == "always" || kv.second.present == profile) out.insert(kv.first);
  return out;
}

// Scrapes until every family the doc requires is exposed (or `timeout`), returns the last scrape.
std::string settledScrape(const Stack& stack, const std::set<std::string>& required,
                          std::chrono::milliseconds timeout) {
  std::string text;
  bbtest::eventually(
      [&] {
        text = stack.scrape();
        auto names = familyNames(parseExposition(text));
        for (const auto& r : required)
          if (!names.count(r)) return false;
        return true;
      },
      timeout);
  return text;
}

std::map<std::string, DocRow> loadDoc() {
  auto doc = parseDoc(readFile(kSourceDir + "/docs/metrics.md"));
  EXPECT_GT(doc.size(), 20u) << "docs/metrics.md: no family table found";
  return doc;
}

// --- tests ----------------------------------------------------------------------------------

TEST(PromtoolTest, AlertRulesAndScrapeConfigAreValidAndUnitTested) {
  const std::string dir = kSourceDir + "/packaging/prometheus";
  auto rules = bbtest::runProgram({kPromtool, "check", "rules", dir + "/alerts.yml"});
  EXPECT_EQ(rules.first, 0) << rules.second << kInstallHint;
  EXPECT_NE(rules.second.find("SUCCESS: 9 rules found"), std::string::npos) << rules.second;

  auto unit = bbtest::runProgram(
      {kPromtool, "test", "rules", kSourceDir + "/tests/prometheus/alerts_test.yml"});
  EXPECT_EQ(unit.first, 0) << unit.second;
  EXPECT_NE(unit.second.find("SUCCESS"), std::string::npos) << unit.second;

  auto config = bbtest::runProgram({kPromtool, "check", "config", dir + "/prometheus.yml"});
  EXPECT_EQ(config.first, 0) << config.second;
}

// promtool's linter on what the agent serves, plus the conventions it does not check.
void checkExposition(const std::string& profile) {
  auto doc = loadDoc();
  Stack stack(profile);
  std::string text = settledScrape(stack, requiredFamilies(doc, profile), seconds(20));
  ASSERT_FALSE(text.empty()) << "no answer from the agent's /metrics";

  TempDir dir;
  dir.write("scrape.txt", text);
  auto lint = bbtest::runProgram(
      {"/bin/sh", "-c", "exec \"$0\" check metrics < \"$1\"", kPromtool, dir.file("scrape.txt")});
  EXPECT_EQ(lint.first, 0) << lint.second << kInstallHint;
  EXPECT_EQ(lint.second, "") << "promtool check metrics (" << profile << "):\n" << lint.second;

  static const std::regex kNumber("^[0-9]+$");
  static const std::regex kHash("^(0x)?[0-9a-fA-F]{16,}$");
  for (const auto& [name, fam] : parseExposition(text)) {
    EXPECT_FALSE(fam.help.empty()) << name << " has no HELP text";
    bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    EXPECT_EQ(total, fam.type == "counter")
        << name << " is a " << fam.type << ": `_total` belongs on counters, and only there";
    for (const auto& labels : fam.samples) {
      for (const auto& [label, value] : labels) {
        if (label == "le" || label == "code") continue;
        EXPECT_FALSE(std::regex_match(value, kNumber))
            << name << "{" << label << "=\"" << value
            << "\"}: a number as a label value (a height or an id?) makes unbounded series";
        EXPECT_FALSE(std::regex_match(value, kHash))
            << name << "{" << label << "=\"" << value << "\"}: a hash as a label value";
      }
    }
  }
}

TEST(PromtoolTest, LiveScrapeIsCleanOnSpecProfile) { checkExposition("spec"); }
TEST(PromtoolTest, LiveScrapeIsCleanOnTheBlockProfile) { checkExposition("theblock"); }

// Every family exposed is documented with its type and labels, and every documented family is
// exposed when its `present` column says it should be (and not when it names the other profile).
void checkDoc(const std::string& profile, const std::string& other) {
  auto doc = loadDoc();
  Stack stack(profile);
  auto required = requiredFamilies(doc, profile);
  auto fams = parseExposition(settledScrape(stack, required, seconds(20)));
  auto exposed = familyNames(fams);
  for (const auto& name : required)
    EXPECT_TRUE(exposed.count(name))
        << name << " is documented as present (" << doc[name].present
        << ") but the agent does not expose it against a " << profile << " node";
  for (const auto& name : exposed) {
    auto it = doc.find(name);
    if (it == doc.end()) {
      ADD_FAILURE() << name << " (" << fams[name].type
                    << ") is exposed but not documented in docs/metrics.md";
      continue;
    }
    EXPECT_EQ(it->second.type, fams[name].type) << name << ": type in docs/metrics.md";
    EXPECT_EQ(it->second.labels, fams[name].label_names)
        << name << ": labels in docs/metrics.md differ from the exposition";
    EXPECT_NE(it->second.present, other) << name << " is documented as " << other
                                         << "-only but is exposed against a " << profile << " node";
  }
  for (const auto& [name, row] : doc) {
    static const std::set<std::string> kMarkers{"always", "spec", "theblock", "on-event"};
    EXPECT_TRUE(kMarkers.count(row.present))
        << name << ": present must be always, spec, theblock or on-event, not '" << row.present
        << "'";
  }
}

TEST(MetricsDocTest, MatchesExpositionOnSpecProfile) { checkDoc("spec", "theblock"); }
TEST(MetricsDocTest, MatchesExpositionOnTheBlockProfile) { checkDoc("theblock", "spec"); }

// --- the Grafana dashboard against a real Prometheus ----------------------------------------

using bbtest::PanelQuery;

// Both shipped dashboards (node and fleet) pass the static checks, and every query of every
// panel returns series from a real Prometheus scraping two agents, labelled as the shipped
// targets file labels them.
TEST(GrafanaDashboardTest, EveryPanelQueryReturnsSeriesFromARealPrometheus) {
  std::vector<PanelQuery> queries;
  for (const char* file : {"blockbuster.json", "blockbuster-fleet.json"}) {
    auto some = bbtest::checkDashboard(bbtest::loadDashboard(file));
    EXPECT_GT(some.size(), 10u) << file;
    // The Alerts row lists firing alerts: none fire here (the fleet test checks it).
    for (auto& q : some)
      if (q.row != "Alerts") queries.push_back({q.row, std::string(file) + ": " + q.panel, q.expr});
  }

  Stack spec("spec");
  Stack theblock("theblock");
  TempDir dir;
  dir.write("prometheus.yml",
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            "rule_files:\n"
            "  - " +
                kSourceDir +
                "/packaging/prometheus/alerts.yml\n"
                "scrape_configs:\n"
                "  - job_name: blockbuster\n"
                "    static_configs:\n"
                "      - targets: ['" +
                spec.target() +
                "']\n"
                "        labels: {node: spec}\n"
                "      - targets: ['" +
                theblock.target() +
                "']\n"
                "        labels: {node: theblock}\n");
  std::unique_ptr<bbtest::PrometheusServer> server;
  ASSERT_NO_THROW(server = std::make_unique<bbtest::PrometheusServer>(dir.file("prometheus.yml"),
                                                                      dir.file("data")));
  auto& prometheus = *server;
  auto api = [&](const std::string& path) { return prometheus.get(path); };
  // Both agents scraped and healthy, as Prometheus sees them.
  EXPECT_TRUE(bbtest::eventually(
      [&] {
        auto t = api("/api/v1/targets?state=active");
        if (!t["data"]["activeTargets"].isArray()) return false;
        size_t up = 0;
        for (const auto& target : t["data"]["activeTargets"].asArray())
          if (target["health"].isString() && target["health"].asString() == "up") ++up;
        return up == 2;
      },
      seconds(20)))
      << api("/api/v1/targets").dump();

  // What Grafana sends: the variables at "All", rate windows of several scrapes. The fleet
  // view's "Blocks in 10 min" needs an offset the test shortens (10m -> 20s) like the rules.
  std::map<size_t, std::string> missing;  // query index -> last answer
  for (size_t i = 0; i < queries.size(); ++i) missing[i] = "(not asked yet)";
  bbtest::eventually(
      [&] {
        for (auto it = missing.begin(); it != missing.end();) {
          std::string expr = bbtest::grafanaExpr(queries[it->first].expr);
          int status = 0;
          std::string body;
          auto result = prometheus.query(expr, &status, &body);
          if (status == 400) {
            ADD_FAILURE() << "panel '" << queries[it->first].panel << "': Prometheus rejects "
                          << expr << ": " << body;
            it = missing.erase(it);
            continue;
          }
          if (result.isArray() && result.size() > 0) {
            it = missing.erase(it);
          } else {
            it->second = body;
            ++it;
          }
        }
        return missing.empty();
      },
      seconds(40), std::chrono::milliseconds(500));
  for (const auto& [i, answer] : missing) {
    ADD_FAILURE() << "panel '" << queries[i].panel << "': no series for "
                  << bbtest::grafanaExpr(queries[i].expr) << "\n  last answer: " << answer;
  }

  // The alerting rules load and evaluate without error on real data, and each says how bad it
  // is, what happened and where its runbook is: a section of docs/operating.md.
  const std::string operating = readFile(kSourceDir + "/docs/operating.md");
  auto rules = api("/api/v1/rules");
  size_t loaded = 0;
  for (const auto& g : rules["data"]["groups"].asArray()) {
    for (const auto& rule : g["rules"].asArray()) {
      ++loaded;
      const std::string name = rule["name"].asString();
      EXPECT_EQ(rule["health"].asString() == "err", false) << name << ": " << rule.dump();
      const std::string severity =
          rule["labels"]["severity"].isString() ? rule["labels"]["severity"].asString() : "";
      EXPECT_TRUE(severity == "critical" || severity == "warning") << name << ": " << severity;
      for (const char* key : {"summary", "description", "runbook_url"})
        EXPECT_TRUE(rule["annotations"][key].isString() &&
                    !rule["annotations"][key].asString().empty())
            << name << " has no " << key;
      std::string lower;
      for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      EXPECT_EQ(rule["annotations"]["runbook_url"].asString(),
                "https://blockbuster.invalid/docs/operating.md#" + lower)
          << name;
      EXPECT_NE(operating.find("\n### " + name + "\n"), std::string::npos)
          << "docs/operating.md has no section '### " << name << "' (its runbook)";
    }
  }
  EXPECT_EQ(loaded, 9u) << rules.dump();
}

}  // namespace
