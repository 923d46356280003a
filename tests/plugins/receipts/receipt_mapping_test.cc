// Mappings of both profiles' recorded answers, rendering, and the query validation.
#include "receipt_mapping.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "fixture.h"

namespace rx = blockbuster::receipts;
using blockbuster::Json;

namespace {

Json fixture(const std::string& name) { return bbtest::readFixture(BB_RECEIPTS_FIXTURES, name); }

std::string badQuery(std::vector<std::pair<std::string, std::string>> q) {
  auto p = rx::parseReceiptQuery(q);
  EXPECT_FALSE(p.query.has_value());
  return p.error_message;
}

}  // namespace

TEST(SpecMapping, EveryFieldOfRecordedReceipts) {
  Json audit = fixture("spec_receipt_audit.json");
  ASSERT_TRUE(rx::isSpecAuditShape(audit));
  const auto& list = audit["receipts"].asArray();
  rx::Mapped m = rx::fromSpec(list[0]);
  ASSERT_TRUE(m.receipt) << m.error;
  const auto& r = *m.receipt;
  EXPECT_EQ(r.id, "job_00000000000000a3");
  EXPECT_EQ(r.market, "compute");
  EXPECT_EQ(r.block_height, 123457);
  EXPECT_EQ(r.timestamp, 1738549206);
  EXPECT_EQ(r.provider, std::optional<std::string>("0x1234aa"));
  EXPECT_EQ(r.consumer, std::optional<std::string>("0x5678bb"));
  EXPECT_EQ(r.amount, std::optional<std::string>("100"));
  EXPECT_EQ(r.status, std::optional<std::string>("completed"));
  EXPECT_EQ(Json::parse(r.details), list[0]["details"]);

  auto storage = *rx::fromSpec(list[1]).receipt;
  EXPECT_EQ(storage.amount, std::optional<std::string>("2.5"));
  auto ad = *rx::fromSpec(list[3]).receipt;
  EXPECT_EQ(ad.market, "ad");
  EXPECT_EQ(ad.timestamp, 1738549194);  // fractional seconds truncated
  EXPECT_FALSE(ad.amount);
  EXPECT_FALSE(ad.status);
}

TEST(SpecMapping, GarbageIsRejectedWithAReason) {
  EXPECT_FALSE(rx::fromSpec(Json("x")).receipt);
  auto noId = rx::fromSpec(Json{{"market", "compute"}});
  EXPECT_FALSE(noId.receipt);
  EXPECT_NE(noId.error.find("id"), std::string::npos);
  auto badMarket = rx::fromSpec(Json{{"id", "a"}, {"market", "gold"}});
  EXPECT_FALSE(badMarket.receipt);
  EXPECT_NE(badMarket.error.find("gold"), std::string::npos);
  // Wrong types become nulls, never a crash or a made-up 0.
  auto odd = rx::fromSpec(Json{{"id", 42},
                               {"market", "energy"},
                               {"block_height", "high"},
                               {"timestamp", Json::array()},
                               {"provider", 5},
                               {"amount", "100"}});
  ASSERT_TRUE(odd.receipt);
  EXPECT_EQ(odd.receipt->id, "42");
  EXPECT_FALSE(odd.receipt->block_height);
  EXPECT_FALSE(odd.receipt->timestamp);
  EXPECT_FALSE(odd.receipt->provider);
  EXPECT_FALSE(odd.receipt->amount);
  EXPECT_EQ(odd.receipt->details, "null");
  EXPECT_FALSE(rx::isSpecAuditShape(Json{{"receipts", Json::object()}, {"total", 1}}));
  EXPECT_FALSE(rx::isSpecAuditShape(Json::array()));
  EXPECT_FALSE(rx::isSpecAuditShape(Json{{"receipts", Json::array()}}));
}

TEST(TheBlockMapping, SettlementLedgerEntries) {
  Json ledger = fixture("theblock_settlement_audit.json");
  auto r = *rx::fromSettlement(ledger[size_t{2}]).receipt;
  EXPECT_EQ(r.id, "settlement:3");
  EXPECT_EQ(r.market, "compute");
  EXPECT_FALSE(r.block_height);  // the ledger has no block height
  EXPECT_EQ(r.timestamp, 1738549220);
  EXPECT_EQ(r.provider, std::optional<std::string>("0xprov1"));
  EXPECT_FALSE(r.consumer);
  EXPECT_EQ(r.amount, std::optional<std::string>("-50"));
  EXPECT_FALSE(r.status);
  EXPECT_EQ(Json::parse(r.details), ledger[size_t{2}]);
  EXPECT_FALSE(rx::fromSettlement(Json{{"sequence", "x"}}).receipt);
  EXPECT_FALSE(rx::fromSettlement(Json(3)).receipt);
}

TEST(TheBlockMapping, EnergyReceipts) {
  Json page = fixture("theblock_energy_receipts.json");
  const Json& e = page["receipts"][size_t{1}];
  auto r = *rx::fromEnergy(e).receipt;
  EXPECT_EQ(r.id, "energy:m0002");
  EXPECT_EQ(r.market, "energy");
  EXPECT_EQ(r.block_height, 201);
  EXPECT_FALSE(r.timestamp);  // the node gives none
  EXPECT_EQ(r.provider, std::optional<std::string>("energy-2"));
  EXPECT_EQ(r.consumer, std::optional<std::string>("0xbuyer2"));
  EXPECT_EQ(r.amount, std::optional<std::string>("36"));
  EXPECT_FALSE(r.status);
  EXPECT_EQ(Json::parse(r.details), e);
  EXPECT_FALSE(rx::fromEnergy(Json{{"meter_hash", ""}}).receipt);
  EXPECT_FALSE(rx::fromEnergy(Json{{"seller", "x"}}).receipt);
}

TEST(TheBlockMapping, SlaHistory) {
  Json sla = fixture("theblock_sla_history.json");
  auto r = *rx::fromSla(sla[size_t{0}]).receipt;
  EXPECT_EQ(r.id, "sla:job_02");
  EXPECT_EQ(r.market, "compute");
  EXPECT_FALSE(r.block_height);
  EXPECT_EQ(r.timestamp, 1738549160);
  EXPECT_EQ(r.provider, std::optional<std::string>("0xprov2"));
  EXPECT_EQ(r.consumer, std::optional<std::string>("0xbuyer9"));
  EXPECT_FALSE(r.amount);  // the SLA record has no price paid
  EXPECT_EQ(r.status, std::optional<std::string>("cancelled"));
  EXPECT_EQ(Json::parse(r.details), sla[size_t{0}]);
  EXPECT_FALSE(rx::fromSla(Json{{"provider", "x"}}).receipt);
}

TEST(Rendering, ReceiptAndOperationInTheGuidesShape) {
  auto r = *rx::fromSpec(fixture("spec_receipt_audit.json")["receipts"][size_t{0}]).receipt;
  Json j = rx::receiptJson(r);
  std::vector<std::string> keys;
  for (const auto& m : j.asObject()) keys.push_back(m.first);
  EXPECT_EQ(keys, (std::vector<std::string>{"id", "market", "block_height", "timestamp", "provider",
                                            "consumer", "amount", "status", "details"}));
  std::string text;
  rx::appendReceiptText(text, r);
  EXPECT_EQ(Json::parse(text), j);
  Json op = rx::operationJson(r);
  EXPECT_EQ(op["type"], Json("compute"));
  EXPECT_EQ(op["amount"], Json(100));
  EXPECT_FALSE(op.contains("market"));
  rx::StoredReceipt bare;
  bare.id = "x";
  bare.market = "ad";
  Json b = rx::receiptJson(bare);
  EXPECT_TRUE(b["amount"].isNull());
  EXPECT_TRUE(b["block_height"].isNull());
  text.clear();
  rx::appendReceiptText(text, bare);
  EXPECT_EQ(Json::parse(text), b);
}

TEST(QueryValidation, DefaultsAndGoodValues) {
  auto p = rx::parseReceiptQuery({});
  ASSERT_TRUE(p.query);
  EXPECT_EQ(p.query->limit, 100);
  EXPECT_EQ(p.query->offset, 0);
  EXPECT_EQ(p.query->market, "");
  p = rx::parseReceiptQuery({{"limit", "1000"}, {"offset", "25"}, {"market", "ad"}});
  ASSERT_TRUE(p.query);
  EXPECT_EQ(p.query->limit, 1000);
  EXPECT_EQ(p.query->offset, 25);
  EXPECT_EQ(p.query->market, "ad");
  // Unknown parameters (a cache-buster) are ignored, as the guide's server does.
  p = rx::parseReceiptQuery({{"_", "123"}, {"limit", "7"}, {"page", "1"}});
  ASSERT_TRUE(p.query) << p.error_message;
  EXPECT_EQ(p.query->limit, 7);
}

TEST(QueryValidation, EveryBadParameterNamesItselfAndWhatIsAllowed) {
  EXPECT_EQ(badQuery({{"limit", "abc"}}),
            "query parameter 'limit' must be an integer from 1 to 1000, got 'abc'");
  for (const char* v : {"0", "1001", "-1", "", "1.5", " 5", "99999999999999999999"})
    EXPECT_NE(badQuery({{"limit", v}}).find("'limit' must be an integer from 1 to 1000"),
              std::string::npos)
        << v;
  for (const char* v : {"-1", "x", "", "1e3"})
    EXPECT_NE(badQuery({{"offset", v}}).find("'offset' must be an integer >= 0"), std::string::npos)
        << v;
  EXPECT_EQ(badQuery({{"market", "gold"}}),
            "query parameter 'market' must be one of compute, storage, energy, ad, got 'gold'");
  EXPECT_NE(badQuery({{"market", "Compute"}}).find("'market'"), std::string::npos);
  EXPECT_NE(badQuery({{"limit", "5"}, {"limit", "6"}}).find("more than once"), std::string::npos);
  EXPECT_NE(badQuery({{"offset", "5"}, {"offset", "5"}}).find("more than once"), std::string::npos);
  EXPECT_NE(badQuery({{"market", "ad"}, {"market", "ad"}}).find("more than once"),
            std::string::npos);
  // A long value is shortened in the message.
  EXPECT_LT(badQuery({{"market", std::string(500, 'x')}}).size(), 200u);
}

TEST(Cursor, ParsesIntegersOnly) {
  EXPECT_EQ(rx::cursorInt(std::optional<std::string>("42")), 42);
  EXPECT_FALSE(rx::cursorInt(std::nullopt));
  EXPECT_FALSE(rx::cursorInt(std::optional<std::string>("junk")));
  EXPECT_FALSE(rx::cursorInt(std::optional<std::string>("\"7\"")));
}
