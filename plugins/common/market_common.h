// What the four market plugins (compute, storage, energy, ads) share: the answers of one cycle
// by method (node_port.h has the Answer of one call), safe reading of figures out of untrusted
// JSON, the status rule and the report that becomes the published "market" section, its metrics
// and its features.
//
// No SDK wrapper here (plugin.h): only json.h and the C constants of plugin_abi.h, so the logic
// is unit-testable on recorded answers alone. market_glue.h turns a report into host calls.
#ifndef BLOCKBUSTER_PLUGINS_COMMON_MARKET_COMMON_H_
#define BLOCKBUSTER_PLUGINS_COMMON_MARKET_COMMON_H_

#include <blockbuster/json.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "node_port.h"

namespace blockbuster::markets {

using node::Answer;
using node::Call;
using node::Profile;
using node::profileName;

/// The status the dashboard shows for one market.
enum class Status { kHealthy, kIdle, kUnavailable };
/// "healthy", "idle" or "unavailable".
const char* statusName(Status s);

/// The answers of one cycle, by method name. A method absent from the map was not called.
using Answers = std::map<std::string, Answer>;

/// Answers from a recording: an object of method -> {"result": X} | {"error": {"code", "message"}}
/// | {"failure": {"status", "message"}} (status a bb_status: 2 transport, 3 timeout, ...).
/// Throws std::invalid_argument naming the method whose entry is none of these.
Answers answersFromRecording(const Json& recording);

/// The real node sometimes reports a failure as a *success* whose result is {"error": ...}.
/// Returns the answer with such a result turned into a failed call; any other answer unchanged.
Answer normalise(Answer a);

/// True when `value` is the real node's "this market is not running" answer:
/// an object whose "status" is "unavailable" (or "disabled") and that carries nothing else useful.
bool saysUnavailable(const Json& value);

/// The normalised answer of `method` when it is a success whose result is an object and not
/// a "market unavailable" answer; else nullopt with `*reason` saying why (not called, the
/// call's error, unavailable, wrong type).
std::optional<Json> objectAnswer(const Answers& answers, std::string_view method,
                                 std::string* reason);

/// One published figure: a value, or the reason it is unknown. Never a made-up 0.
struct Figure {
  std::optional<double> value;
  std::string reason;  ///< why `value` is empty; "" when known
  /// The node answered the member with a JSON type it must not have (a string, list, object or
  /// boolean where a number belongs): not "unknown" but a malformed answer, counted as a failure.
  bool malformed = false;

  static Figure of(double v) { return Figure{v, ""}; }
  static Figure none(std::string why) { return Figure{std::nullopt, std::move(why)}; }
  bool known() const noexcept { return value.has_value(); }
  /// The value, or NaN (which removes a metric series) when unknown.
  double orNaN() const noexcept;
  /// Known and strictly positive.
  bool positive() const noexcept { return value && *value > 0; }
};

/// `obj[key]` as a finite number >= 0, else unknown with a reason naming `source.key` and what
/// was wrong (missing, wrong type, negative). `obj` may be any JSON value.
Figure readCount(const Json& obj, std::string_view key, std::string_view source);
/// Like readCount, and the value must lie in [0, 1].
Figure readRatio(const Json& obj, std::string_view key, std::string_view source);
/// Sum of `arr[i][key]` over an array. Unknown when `arr` is not an array or when any entry
/// lacks a non-negative number there (a sum over part of the entries would be made up).
Figure sumOf(const Json& arr, std::string_view key, std::string_view source);
/// Number of distinct string values of `arr[i][key]` over an array, for every key in `keys`
/// together (e.g. buyers and sellers). Unknown when an entry lacks a string there.
Figure countDistinct(const Json& arr, const std::vector<std::string_view>& keys,
                     std::string_view source);

/// The governor's economics snapshot for one market, from `governor.status`.
/// utilization_ppm / 1e6 when the governor is enabled and lists the market; else unknown with
/// the reason (not called, disabled, failed, unrecognised).
Figure governorUtilization(const Answers& answers, std::string_view market);
/// The RPC method the governor figure comes from.
inline constexpr const char* kGovernorMethod = "governor.status";

/// One Prometheus series to set (NaN value = remove the series).
struct MetricPoint {
  std::string name;
  std::string help;
  double value;
  std::vector<std::pair<std::string, std::string>> labels;
};

/// One feature of the feature stream ("<plugin>.<name>" once the agent prefixes it).
struct FeaturePoint {
  std::string name;
  double value;  ///< NaN = unknown
};

/// What one market publishes in one cycle. Built by a market's logic, emitted by market_glue.h.
struct MarketReport {
  std::string market;  ///< metric label value: compute | storage | energy | ad
  Profile profile = Profile::kUnknown;
  Status status = Status::kUnavailable;
  std::string error;  ///< set when status is kUnavailable
  /// The guide's fields for this market, in the guide's order.
  std::vector<std::pair<std::string, Figure>> fields;
  /// Further figures this plugin publishes beside the guide's (also null + reason if unknown).
  std::vector<std::pair<std::string, Figure>> extras;
  /// Descriptive members published as they are (e.g. which source a figure came from).
  Json info = Json::object();
  std::vector<MetricPoint> metrics;
  std::vector<FeaturePoint> features;
  /// The answer had a shape this plugin cannot recognise at all: after publishing, the glue
  /// throws so the agent logs and counts the failure.
  bool unrecognised = false;
  /// The reason of the first malformed figure set(); non-empty makes the glue throw after
  /// publishing, like `unrecognised`, so a node answering wrong types is counted and reported.
  std::string malformed;

  /// The figure of a guide field or extra; nullptr when there is no such name.
  const Figure* figure(std::string_view name) const;
  /// The published body: status, the guide's fields, extras, profile, unavailable, error.
  Json body() const;
  /// Sets every figure unknown with `reason` (used when the whole market is unavailable); a
  /// figure already unknown for a reason of its own keeps that reason.
  void clearFigures(const std::string& reason);
  /// Status kUnavailable with `why` as the error and as the reason of every figure.
  void markUnavailable(const std::string& why);
  /// Replaces the figure of an existing field or extra (throws std::logic_error if absent);
  /// a malformed figure's reason is kept in `malformed`.
  void set(std::string_view name, Figure f);
};

/// The value of a report's figure, NaN when unknown or when the report has no such figure.
double valueOrNaN(const MarketReport& r, std::string_view name);

/// A report whose `fields` and `extras` are named in order, all unknown until set().
MarketReport makeReport(std::string market, const std::vector<std::string>& fields,
                        const std::vector<std::string>& extras);

/// At most `max` characters of a value's JSON text, for error messages about odd answers.
std::string excerpt(const Json& v, size_t max = 160);

/// Metric families that more than one market plugin sets: one name and one HELP text each, so
/// that the agent registers each family once whichever plugin comes first.
inline constexpr const char* kProvidersMetric = "theblock_market_providers";
inline constexpr const char* kProvidersHelp =
    "Providers offering capacity in the market, as the node reports them.";
inline constexpr const char* kUtilizationMetric = "theblock_market_utilization_ratio";
inline constexpr const char* kUtilizationHelp =
    "Share of the market's capacity in use, 0..1 (compute: avg_utilization, storage: "
    "capacity_used, energy and ad: the governor's utilization).";
inline constexpr const char* kAvgPriceMetric = "theblock_market_avg_price";
inline constexpr const char* kAvgPriceHelp =
    "Average price in the market, in the node's currency unit per the market's unit of sale.";
inline constexpr const char* kRevenueMetric = "theblock_market_revenue";
inline constexpr const char* kRevenueHelp =
    "Revenue of the market as the node reports it, in the node's currency unit.";

/// Status from the figures: kHealthy when any `activity` figure is positive or `moved` is true;
/// kIdle when at least one activity figure is known (all of them zero) and nothing moved;
/// kUnavailable (with `error` set) when none is known.
Status decideStatus(const std::vector<const Figure*>& activity, bool moved, std::string* error);

/// True when both figures are known and differ (cumulative activity changed between samples).
bool changed(const std::optional<double>& before, const Figure& now);
/// True when both figures are known and `now` is larger.
bool rose(const std::optional<double>& before, const Figure& now);

/// Adds the status metrics of a report: theblock_market_up and theblock_market_status.
void addStatusMetrics(MarketReport& report);

/// What a market's update() returns.
struct Outcome {
  MarketReport report;
  /// The remembered profile stopped matching: make the calls of plan() again, this cycle,
  /// and pass the new answers to update(); `report` is to be ignored.
  bool redetect = false;
};

}  // namespace blockbuster::markets

#endif  // BLOCKBUSTER_PLUGINS_COMMON_MARKET_COMMON_H_
