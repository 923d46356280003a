#include "market_base.h"

#include <optional>
#include <stdexcept>
#include <string>

namespace blockbuster::markets {
namespace {

// The method exists on the node: it answered, or failed for a reason other than -32601.
bool served(const Answers& a, const char* method) {
  auto it = a.find(method);
  return it != a.end() && !it->second.methodNotFound();
}

}  // namespace

Outcome MarketBase::update(const Answers& answers) {
  return surface_.theblock_methods.empty() ? updateShared(answers) : updateSplit(answers);
}

void MarketBase::adopt(Profile p) {
  if (profile_ != p) forget();
  profile_ = p;
}

Outcome MarketBase::redetect() {
  lost(profile_);
  profile_ = Profile::kUnknown;
  forget();
  Outcome out;
  out.redetect = true;
  return out;
}

void MarketBase::finish(MarketReport& r) const {
  addStatusMetrics(r);
  addFigureMetrics(r);
}

// Compute and energy: both profiles serve the primary method, with answers of different shapes.
Outcome MarketBase::updateShared(const Answers& answers) {
  const char* method = surface_.primary;
  auto it = answers.find(method);
  if (it == answers.end())
    throw std::logic_error(std::string("update() needs the answer of ") + method);
  Outcome out;
  MarketReport& r = out.report;
  r = makeReport(surface_.market, surface_.fields, surface_.extras);
  Answer a = normalise(it->second);

  if (!a.ok) {
    if (!explainFailure(a, r)) {
      r.profile = profile_;
      if (a.methodNotFound())
        r.markUnavailable("the node serves no " + surface_.market +
                          " market: " + a.describe(method));
      else
        r.markUnavailable(a.describe(method));
    }
  } else if (saysUnavailable(a.value)) {
    r.profile = profile_;
    r.markUnavailable("the node reports its " + surface_.market + " market unavailable (" + method +
                      " answered " + excerpt(a.value) + ")");
  } else {
    Profile seen = shapeOf(a.value);
    if (seen == Profile::kUnknown) {
      r.profile = profile_;
      r.markUnavailable(
          std::string(method) +
          " answered a shape neither the guide's nor the real node's: " + excerpt(a.value));
      r.unrecognised = true;
    } else if (profile_ != Profile::kUnknown && seen != profile_) {
      return redetect();
    } else {
      adopt(seen);
      r.profile = seen;
      if (seen == Profile::kSpec)
        spec(a.value, r);
      else
        theblock(a.value, answers, r);
    }
  }
  finish(r);
  return out;
}

// Storage and ads: the guide's profile serves the primary method, the real node its own.
Outcome MarketBase::updateSplit(const Answers& answers) {
  const char* method = surface_.primary;
  Outcome out;
  MarketReport& r = out.report;
  r = makeReport(surface_.market, surface_.fields, surface_.extras);
  auto it = answers.find(method);
  std::optional<Answer> stats;
  if (it != answers.end()) stats = normalise(it->second);
  bool theblockServed = false;
  for (const char* m : surface_.theblock_methods)
    theblockServed = theblockServed || served(answers, m);

  if ((profile_ == Profile::kSpec && (!stats || stats->methodNotFound())) ||
      (profile_ == Profile::kTheBlock && !theblockServed))
    return redetect();

  if (stats && stats->ok) {
    if (saysUnavailable(stats->value)) {
      // The guide's node says its market is not running: it is the guide's profile.
      profile_ = Profile::kSpec;
      r.profile = profile_;
      r.markUnavailable("the node reports its " + surface_.market + " market unavailable (" +
                        method + " answered " + excerpt(stats->value) + ")");
    } else if (shapeOf(stats->value) != Profile::kSpec) {
      r.profile = profile_;
      r.markUnavailable(
          std::string(method) +
          " answered a shape the guide's profile does not have: " + excerpt(stats->value));
      r.unrecognised = true;
    } else {
      adopt(Profile::kSpec);
      r.profile = profile_;
      spec(stats->value, r);
    }
  } else if (theblockServed) {
    adopt(Profile::kTheBlock);
    r.profile = profile_;
    theblock(Json(), answers, r);
  } else if (stats && !stats->methodNotFound()) {
    r.profile = profile_;
    r.markUnavailable(stats->describe(method));
  } else {
    r.profile = profile_;
    r.markUnavailable(surface_.none_served);
  }
  finish(r);
  return out;
}

}  // namespace blockbuster::markets
