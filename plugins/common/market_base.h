// The update() skeleton the four market plugins share: which profile answered, re-detection
// when the remembered one stops matching, the "unavailable" answers, and the status and figure
// metrics of every report. A market adds its calls (plan), its field mapping (spec, theblock)
// and its metrics; the words of the shared answers come from its MarketSurface.
//
// No SDK wrapper here (plugin.h): unit-tested on recorded answers alone.
#ifndef BLOCKBUSTER_PLUGINS_COMMON_MARKET_BASE_H_
#define BLOCKBUSTER_PLUGINS_COMMON_MARKET_BASE_H_

#include <string>
#include <utility>
#include <vector>

#include "market_common.h"

namespace blockbuster::markets {

/// How a market's methods are laid out on the two node profiles.
struct MarketSurface {
  /// The metric label and the noun of the messages: compute | storage | energy | ad.
  std::string market;
  /// The guide's fields and this plugin's extra figures, in order (see makeReport).
  std::vector<std::string> fields;
  std::vector<std::string> extras;
  /// The method read first. With `theblock_methods` empty, both profiles serve it and the shape
  /// of its answer tells the profile (compute, energy); else only the guide's profile serves it
  /// (storage, ads).
  const char* primary = "";
  /// The real node's own methods: any of them served (answered, or failed other than -32601)
  /// tells the real node's profile.
  std::vector<const char*> theblock_methods;
  /// The error when neither profile's methods are served (with `theblock_methods` only).
  std::string none_served;
};

/// Remembers the detected profile; the derived market remembers its previous samples.
/// Not thread-safe: one instance per plugin instance, called from its collect() only.
class MarketBase {
 public:
  virtual ~MarketBase() = default;

  /// Builds this cycle's report from the answers to plan() and updates what it remembers.
  /// `redetect` when the remembered profile stopped matching (the profile is forgotten).
  Outcome update(const Answers& answers);
  Profile profile() const noexcept { return profile_; }

 protected:
  explicit MarketBase(MarketSurface surface) : surface_(std::move(surface)) {}

  /// The profile whose shape the primary method's answer has (an object, not "unavailable");
  /// kUnknown when it has neither (with `theblock_methods`: kSpec or kUnknown).
  virtual Profile shapeOf(const Json& primary) const = 0;
  /// Reads the figures of the guide's profile from the primary method's answer.
  virtual void spec(const Json& primary, MarketReport& r) = 0;
  /// Reads the figures of the real node's profile (`primary` is null with `theblock_methods`).
  virtual void theblock(const Json& primary, const Answers& answers, MarketReport& r) = 0;
  /// Adds the market's own metrics and features of the report's figures.
  virtual void addFigureMetrics(MarketReport& r) const = 0;
  /// Forgets the previous samples (the profile changed, or is being detected again).
  virtual void forget() = 0;
  /// A failed primary call that this market words itself (energy's token and rehearsal codes):
  /// true when it marked `r` unavailable. Without `theblock_methods` only.
  virtual bool explainFailure(const Answer& /*primary*/, MarketReport& /*r*/) { return false; }
  /// The remembered profile `was` stopped matching; called before forget().
  virtual void lost(Profile /*was*/) {}

  /// Takes `p` as the node's profile, forgetting the previous samples when it changes.
  void adopt(Profile p);

  Profile profile_ = Profile::kUnknown;

 private:
  Outcome updateShared(const Answers& answers);
  Outcome updateSplit(const Answers& answers);
  Outcome redetect();
  void finish(MarketReport& r) const;

  MarketSurface surface_;
};

}  // namespace blockbuster::markets

#endif  // BLOCKBUSTER_PLUGINS_COMMON_MARKET_BASE_H_
