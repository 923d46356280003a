// Test support for the Prometheus side: a real Prometheus (or Alertmanager) server started on a
// free loopback port, its HTTP API, and the queries of the Grafana dashboards.
#pragma once

#include <blockbuster/json.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/process.h"

namespace bbtest {

/// Where the tests find the tools (Debian's `prometheus` and `prometheus-alertmanager`).
extern const std::string kPrometheusBin;
extern const std::string kPromtoolBin;
extern const std::string kAlertmanagerBin;
extern const std::string kAmtoolBin;
/// Appended to a failure that may mean a tool is missing.
extern const std::string kPrometheusInstallHint;

std::string readFile(const std::string& path);

/// Percent-encodes a PromQL expression (or any text) for a query string.
std::string urlEncode(const std::string& text);

/// Replaces every occurrence of each key of `vars` in `expr` by its value (Grafana variables).
std::string substitute(std::string expr, const std::map<std::string, std::string>& vars);

/// The text of a file of the source tree, e.g. sourceFile("packaging/prometheus/alerts.yml").
std::string sourceFile(const std::string& relative);

/// `text` with every duration in minutes after "[", "offset " or "for: " (PromQL ranges and
/// offsets, a rule's `for:`) turned into twice as many seconds: 10m -> 20s. The fleet test runs
/// the shipped rules and panel queries this way, 30 times faster, without changing them
/// otherwise.
std::string shortenDurations(const std::string& text);

/// One query of a Grafana panel.
struct PanelQuery {
  std::string row;  ///< title of the row the panel is in ("" before the first row)
  std::string panel;
  std::string expr;
};

/// Every query of every panel (rows included) of a dashboard's `panels`. Adds a test failure
/// for a panel that does not use the ${datasource} variable or has no query.
void collectQueries(const blockbuster::Json& panels, std::vector<PanelQuery>& out);

/// packaging/grafana/dashboards/<file>, parsed.
blockbuster::Json loadDashboard(const std::string& file);

/// What every shipped dashboard must do, checked without Grafana: a current schema, the
/// datasource, job and node variables (node multi-select with All), every selector filtered by
/// $job and $node, a unit on every panel that shows numbers, and the links between the
/// dashboards. Adds test failures; returns the dashboard's queries.
std::vector<PanelQuery> checkDashboard(const blockbuster::Json& dash);

/// A panel query as Grafana sends it with every variable at "All" (and rate windows of several
/// 1 s scrapes), durations shortened like the test rules.
std::string grafanaExpr(const std::string& expr);

/// A server program (prometheus, alertmanager) started with `args` plus
/// --web.listen-address=127.0.0.1:<free port>, waited for until it prints `ready_line`.
/// Throws with the program's output when it does not start within 30 s.
class ApiServer {
 public:
  ApiServer(const std::string& program, std::vector<std::string> args,
            const std::string& ready_line);
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  /// GET `path`; a null Json unless the answer is 200 with a JSON body.
  blockbuster::Json get(const std::string& path) const;
  ChildProcess& process() { return *process_; }

 private:
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
};

/// A real Prometheus with its config at `config_file` and its data in `data_dir`.
class PrometheusServer : public ApiServer {
 public:
  PrometheusServer(const std::string& config_file, const std::string& data_dir);
  /// /api/v1/query of `expr`: data.result (an array; null when the query failed). `status`
  /// receives the HTTP status and `body` the raw answer when given.
  blockbuster::Json query(const std::string& expr, int* status = nullptr,
                          std::string* body = nullptr) const;
};

}  // namespace bbtest
