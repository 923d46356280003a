#include "network_strength.h"

#include <gtest/gtest.h>

#include <cmath>

namespace blockbuster::network {
namespace {

TEST(NetworkStrength, WorkedExampleWithEveryInput) {
  // 23/50*30 = 13.8; 145.7/1000*40 = 5.828; 30 - 6/10 = 29.4; sum 49.028 -> 49.
  StrengthResult r = computeStrength({23.0, 145.7, 6.0}, StrengthParams{});
  ASSERT_TRUE(r.peers_term && r.tps_term && r.finality_term && r.strength);
  EXPECT_NEAR(*r.peers_term, 13.8, 1e-9);
  EXPECT_NEAR(*r.tps_term, 5.828, 1e-9);
  EXPECT_NEAR(*r.finality_term, 29.4, 1e-9);
  EXPECT_EQ(*r.strength, 49);
}

TEST(NetworkStrength, UnknownInputsAreLeftOutAndTheRestRescaled) {
  // Only peers: 13.8 * 100 / 30 = 46.
  StrengthResult r = computeStrength({23.0, std::nullopt, std::nullopt}, StrengthParams{});
  ASSERT_TRUE(r.peers_term);
  EXPECT_FALSE(r.tps_term);
  EXPECT_FALSE(r.finality_term);
  ASSERT_TRUE(r.strength);
  EXPECT_EQ(*r.strength, 46);

  // tps 500 -> 20 of 40, finality 10 s -> 29 of 30: 49 * 100 / 70 = 70.
  r = computeStrength({std::nullopt, 500.0, 10.0}, StrengthParams{});
  EXPECT_FALSE(r.peers_term);
  ASSERT_TRUE(r.strength);
  EXPECT_EQ(*r.strength, 70);
}

TEST(NetworkStrength, TermsAreCappedAndFloored) {
  StrengthResult r = computeStrength({500.0, 1e6, 0.0}, StrengthParams{});
  EXPECT_DOUBLE_EQ(*r.peers_term, 30);
  EXPECT_DOUBLE_EQ(*r.tps_term, 40);
  EXPECT_DOUBLE_EQ(*r.finality_term, 30);
  EXPECT_EQ(*r.strength, 100);

  r = computeStrength({0.0, 0.0, 1000.0}, StrengthParams{});
  EXPECT_DOUBLE_EQ(*r.finality_term, 0);
  EXPECT_EQ(*r.strength, 0);
}

TEST(NetworkStrength, NothingKnownMeansUnknown) {
  StrengthResult r = computeStrength({}, StrengthParams{});
  EXPECT_FALSE(r.strength);
  EXPECT_FALSE(r.peers_term);
}

TEST(NetworkStrength, NegativeOrNonFiniteInputsCountAsUnknown) {
  StrengthResult r = computeStrength({-1.0, std::nan(""), 6.0}, StrengthParams{});
  EXPECT_FALSE(r.peers_term);
  EXPECT_FALSE(r.tps_term);
  ASSERT_TRUE(r.strength);
  EXPECT_EQ(*r.strength, 98);  // 29.4 * 100 / 30
}

TEST(NetworkStrength, WeightsAndThresholdsAreOptions) {
  StrengthParams p;
  p.peers_weight = 50;
  p.peers_target = 10;
  p.tps_weight = 50;
  p.tps_target = 100;
  p.finality_weight = 0;
  p.finality_seconds_per_point = 1;
  ASSERT_EQ(p.validate(), "");
  // peers 5/10*50 = 25; tps 100/100*50 = 50; finality weight 0 adds no points: 75.
  StrengthResult r = computeStrength({5.0, 100.0, 3.0}, p);
  EXPECT_DOUBLE_EQ(*r.peers_term, 25);
  EXPECT_DOUBLE_EQ(*r.tps_term, 50);
  EXPECT_DOUBLE_EQ(*r.finality_term, 0);
  EXPECT_EQ(*r.strength, 75);
}

TEST(NetworkStrength, ValidateNamesTheKeyToFix) {
  StrengthParams p;
  p.peers_target = 0;
  EXPECT_NE(p.validate().find("peers_target"), std::string::npos);
  p = StrengthParams{};
  p.finality_seconds_per_point = -2;
  EXPECT_NE(p.validate().find("finality_seconds_per_point"), std::string::npos);
  p = StrengthParams{};
  p.peers_weight = p.tps_weight = p.finality_weight = 0;
  EXPECT_NE(p.validate().find("peers_weight"), std::string::npos);
  EXPECT_EQ(StrengthParams{}.validate(), "");
}

}  // namespace
}  // namespace blockbuster::network
