#include "prom_support.h"

#include <Poco/URI.h>
#include <gtest/gtest.h>

#include <array>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "integration/stack.h"

namespace bbtest {

const std::string kPrometheusBin = BB_PROMETHEUS_BIN;
const std::string kPromtoolBin = BB_PROMTOOL_BIN;
const std::string kAlertmanagerBin = BB_ALERTMANAGER_BIN;
const std::string kAmtoolBin = BB_AMTOOL_BIN;
const std::string kPrometheusInstallHint =
    " (install Debian's `prometheus` and `prometheus-alertmanager` packages: tools/setup.sh "
    "--test)";

std::string readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string urlEncode(const std::string& text) {
  std::string encoded;
  Poco::URI::encode(text, "!#$&'()*+,/:;=?@[]{}\"|^~<>% ", encoded);
  return encoded;
}

std::string substitute(std::string expr, const std::map<std::string, std::string>& vars) {
  for (const auto& [name, value] : vars) {
    for (size_t pos = expr.find(name); pos != std::string::npos;
         pos = expr.find(name, pos + value.size()))
      expr.replace(pos, name.size(), value);
  }
  return expr;
}

std::string sourceFile(const std::string& relative) {
  return readFile(std::string(BB_TEST_SOURCE_DIR) + "/" + relative);
}

std::string shortenDurations(const std::string& text) {
  static const std::regex kMinutes(R"((\[|offset |for: )([0-9]+)m\b)");
  std::string out;
  auto begin = std::sregex_iterator(text.begin(), text.end(), kMinutes);
  size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    out += text.substr(last, m.position() - last);
    out += m[1].str() + std::to_string(std::stoi(m[2].str()) * 2) + "s";
    last = m.position() + m.length();
  }
  return out + text.substr(last);
}

namespace {

void collectQueriesIn(const blockbuster::Json& panels, std::string& row,
                      std::vector<PanelQuery>& out) {
  for (const auto& p : panels.asArray()) {
    if (p["type"].isString() && p["type"].asString() == "row") {
      row = p["title"].isString() ? p["title"].asString() : "";
      if (p["panels"].isArray()) collectQueriesIn(p["panels"], row, out);
      continue;
    }
    std::string title = p["title"].isString() ? p["title"].asString() : "(untitled)";
    EXPECT_TRUE(p["datasource"]["uid"].isString() &&
                p["datasource"]["uid"].asString() == "${datasource}")
        << "panel '" << title << "' must use the ${datasource} variable";
    // An alert list shows Grafana's view of the alerts and has no query of its own.
    if (p["type"].isString() && p["type"].asString() == "alertlist") continue;
    EXPECT_TRUE(p["targets"].isArray() && p["targets"].size() > 0)
        << "panel '" << title << "' has no query";
    if (!p["targets"].isArray()) continue;
    for (const auto& t : p["targets"].asArray())
      if (t["expr"].isString()) out.push_back({row, title, t["expr"].asString()});
  }
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = s.find(needle); pos != std::string::npos; pos = s.find(needle, pos + 1)) ++n;
  return n;
}

void checkUnits(const blockbuster::Json& panels) {
  for (const auto& p : panels.asArray()) {
    std::string type = p["type"].isString() ? p["type"].asString() : "";
    if (type == "row") {
      if (p["panels"].isArray()) checkUnits(p["panels"]);
      continue;
    }
    if (type == "alertlist") continue;
    const auto& unit = p["fieldConfig"]["defaults"]["unit"];
    EXPECT_TRUE(unit.isString() && !unit.asString().empty())
        << "panel '" << p["title"].asString() << "' has no unit (fieldConfig.defaults.unit)";
  }
}

}  // namespace

void collectQueries(const blockbuster::Json& panels, std::vector<PanelQuery>& out) {
  std::string row;
  collectQueriesIn(panels, row, out);
}

blockbuster::Json loadDashboard(const std::string& file) {
  return blockbuster::Json::parse(sourceFile("packaging/grafana/dashboards/" + file));
}

std::vector<PanelQuery> checkDashboard(const blockbuster::Json& dash) {
  const std::string name = dash["uid"].isString() ? dash["uid"].asString() : "(no uid)";
  EXPECT_TRUE(dash["schemaVersion"].isInt() && dash["schemaVersion"].asInt() >= 39)
      << name << ": export from a current Grafana";
  std::map<std::string, blockbuster::Json> vars;
  for (const auto& v : dash["templating"]["list"].asArray()) vars[v["name"].asString()] = v;
  EXPECT_EQ(vars["datasource"]["query"].asString(), "prometheus") << name;
  EXPECT_EQ(vars["job"]["definition"].asString(), "label_values(blockbuster_build_info, job)")
      << name;
  const auto& node = vars["node"];
  EXPECT_EQ(node["definition"].asString(),
            "label_values(blockbuster_build_info{job=~\"$job\"}, node)")
      << name << ": the node variable lists the `node` label of the scrape targets";
  EXPECT_TRUE(node["multi"].isBool() && node["multi"].asBool()) << name << ": node multi-select";
  EXPECT_TRUE(node["includeAll"].isBool() && node["includeAll"].asBool())
      << name << ": node has All";
  EXPECT_FALSE(vars.count("instance")) << name << ": nodes are chosen by `node`, not `instance`";

  // Links to the other dashboards of the set (by tag), keeping the time range and variables.
  bool linked = false;
  for (const auto& l : dash["links"].asArray()) {
    if (l["type"].asString() != "dashboards") continue;
    for (const auto& tag : l["tags"].asArray()) linked = linked || tag.asString() == "blockbuster";
    EXPECT_TRUE(l["includeVars"].isBool() && l["includeVars"].asBool()) << name;
    EXPECT_TRUE(l["keepTime"].isBool() && l["keepTime"].asBool()) << name;
  }
  EXPECT_TRUE(linked) << name << ": no link to the other Block Buster dashboards";
  bool tagged = false;
  for (const auto& tag : dash["tags"].asArray()) tagged = tagged || tag.asString() == "blockbuster";
  EXPECT_TRUE(tagged) << name << ": the links find the dashboards by the tag blockbuster";

  checkUnits(dash["panels"]);
  // Panels have distinct ids and do not overlap on the 24-column grid.
  std::set<int64_t> ids;
  std::vector<std::pair<std::string, std::array<int64_t, 4>>> boxes;  // x, y, w, h
  for (const auto& p : dash["panels"].asArray()) {
    const std::string title = p["title"].isString() ? p["title"].asString() : "(untitled)";
    EXPECT_TRUE(ids.insert(p["id"].asInt()).second)
        << name << ": panel id " << p["id"].asInt() << " of '" << title << "' is not unique";
    const auto& g = p["gridPos"];
    std::array<int64_t, 4> box{g["x"].asInt(), g["y"].asInt(), g["w"].asInt(), g["h"].asInt()};
    EXPECT_LE(box[0] + box[2], 24) << name << ": '" << title << "' is wider than the grid";
    for (const auto& [other, b] : boxes) {
      bool apart = box[0] + box[2] <= b[0] || b[0] + b[2] <= box[0] || box[1] + box[3] <= b[1] ||
                   b[1] + b[3] <= box[1];
      EXPECT_TRUE(apart) << name << ": '" << title << "' overlaps '" << other << "'";
    }
    boxes.push_back({title, box});
  }
  std::vector<PanelQuery> queries;
  collectQueries(dash["panels"], queries);
  const std::string filter = "{job=~\"$job\",node=~\"$node\"";
  for (const auto& q : queries) {
    EXPECT_EQ(count(q.expr, "{"), count(q.expr, filter))
        << name << ", panel '" << q.panel
        << "': every selector must be filtered by $job and $node: " << q.expr;
  }
  return queries;
}

std::string grafanaExpr(const std::string& expr) {
  return shortenDurations(substitute(expr, {{"$__rate_interval", "10s"},
                                            {"$__interval", "2s"},
                                            {"$job", "blockbuster"},
                                            {"$node", ".+"}}));
}

ApiServer::ApiServer(const std::string& program, std::vector<std::string> args,
                     const std::string& ready_line) {
  port_ = freeLoopbackPort();
  if (port_ == 0) throw std::runtime_error("no free loopback port");
  std::vector<std::string> argv{program};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--web.listen-address=127.0.0.1:" + std::to_string(port_));
  process_ = std::make_unique<ChildProcess>(argv);
  if (!process_->waitForLine(ready_line, std::chrono::seconds(30)))
    throw std::runtime_error(program + " did not start" + kPrometheusInstallHint + ":\n" +
                             process_->output());
}

blockbuster::Json ApiServer::get(const std::string& path) const {
  auto r = httpGet(port_, path);
  if (r.status != 200) return blockbuster::Json();
  try {
    return r.json();
  } catch (const std::exception&) {
    return blockbuster::Json();
  }
}

PrometheusServer::PrometheusServer(const std::string& config_file, const std::string& data_dir)
    : ApiServer(
          kPrometheusBin,
          {"--config.file=" + config_file, "--storage.tsdb.path=" + data_dir, "--log.level=info"},
          "Server is ready to receive web requests") {}

blockbuster::Json PrometheusServer::query(const std::string& expr, int* status,
                                          std::string* body) const {
  auto r = httpGet(port(), "/api/v1/query?query=" + urlEncode(expr));
  if (status) *status = r.status;
  if (body) *body = r.body;
  if (r.status != 200) return blockbuster::Json();
  const blockbuster::Json json = r.json();
  return json["data"]["result"];
}

}  // namespace bbtest
