// Pure functions of the receipts plugin: node answers (both profiles) to canonical receipts,
// canonical receipts to the guide's JSON, and the validation of GET /theblock/receipts.
// No plugin.h: unit-tested alone on recorded answers.
#pragma once

#include <blockbuster/json.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "receipt_store.h"

namespace blockbuster {
namespace receipts {

/// A canonical receipt, or why an entry of a node answer could not become one.
struct Mapped {
  std::optional<StoredReceipt> receipt;
  std::string error;  ///< set when receipt is empty
};

/// Spec profile: one entry of receipt.audit's "receipts" ({"id","market","block_height",
/// "timestamp","provider","consumer","amount","status","details"}). `details` is kept as given.
Mapped fromSpec(const Json& entry);
/// Theblock profile: one settlement.audit ledger entry ({"sequence","timestamp","entity","memo",
/// "delta","balance","anchor"}) -> id "settlement:<sequence>", compute, amount = delta.
Mapped fromSettlement(const Json& entry);
/// Theblock profile: one energy.receipts entry ({"buyer","seller","kwh_delivered","price_paid",
/// "block_settled","treasury_fee","slash_applied","meter_hash"}) -> id "energy:<meter_hash>".
Mapped fromEnergy(const Json& entry);
/// Theblock profile: one compute_market.sla_history entry ({"job_id","provider","buyer",
/// "outcome","resolved_at",...}) -> id "sla:<job_id>", compute, status = outcome.
Mapped fromSla(const Json& entry);

/// True when `result` has receipt.audit's shape: {"receipts":[...],"total":n}.
bool isSpecAuditShape(const Json& result);

/// The guide's receipt object, fields in the guide's order.
Json receiptJson(const StoredReceipt& r);
/// The guide's operation object (type = market).
Json operationJson(const StoredReceipt& r);
/// receiptJson as text, appended to `out` (no parse of details: it is already JSON text).
void appendReceiptText(std::string& out, const StoredReceipt& r);

/// A validated query of GET /theblock/receipts, or the 400 to answer.
struct ParsedQuery {
  std::optional<ReceiptQuery> query;
  std::string error_message;  ///< names the parameter and what is allowed
};
constexpr int64_t kMaxLimit = 1000;
constexpr int64_t kDefaultLimit = 100;
/// Validates limit (1..1000, default 100), offset (>= 0, default 0), market (compute,
/// storage, energy, ad) and before (a cursor, a page's `next`; not with offset); a repeated one
/// or a bad value is an error; any other parameter is ignored.
ParsedQuery parseReceiptQuery(const std::vector<std::pair<std::string, std::string>>& params);

/// Parses a cursor stored as text: an integer, or nullopt when absent or unreadable.
std::optional<int64_t> cursorInt(const std::optional<std::string>& text);

}  // namespace receipts
}  // namespace blockbuster
