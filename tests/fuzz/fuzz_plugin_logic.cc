// Fuzz target: the market plugins' parsers of node answers. Any JSON as any method's answer must
// give a report or a clean exception, never a crash; numbers made up from garbage are caught by
// the unit tests, crashes and hangs here.
#include <blockbuster/json.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "ads_market.h"
#include "compute_market.h"
#include "energy_market.h"
#include "storage_market.h"

using namespace blockbuster::markets;

template <typename Market>
void feed(Market& market, const Answers& answers) {
  try {
    Outcome o = market.update(answers);
    if (o.redetect) market.update(answers);
  } catch (const std::exception&) {
    // An answer of no known shape is reported by throwing: fine.
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Answers answers;
  try {
    blockbuster::Json recording =
        blockbuster::Json::parse(std::string(reinterpret_cast<const char*>(data), size));
    answers = answersFromRecording(recording);
  } catch (const std::exception&) {
    return 0;
  }
  ComputeMarket compute;
  StorageMarket storage;
  EnergyMarket energy;
  AdsMarket ads;
  for (int round = 0; round < 2; ++round) {  // the second round exercises remembered state
    feed(compute, answers);
    feed(storage, answers);
    feed(energy, answers);
    feed(ads, answers);
  }
  return 0;
}
