#include "receipt_mapping.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

namespace blockbuster {
namespace receipts {

namespace {

bool isMarket(const std::string& m) {
  const auto& all = marketNames();
  return std::find(all.begin(), all.end(), m) != all.end();
}

// A whole number (an integer, or a double with an integral value), else nullopt.
std::optional<int64_t> intOf(const Json& v) {
  if (!v.isNumber()) return std::nullopt;
  try {
    return v.asInt();
  } catch (const JsonError&) {
    return std::nullopt;
  }
}

// Unix seconds; a fractional timestamp is truncated to its second.
std::optional<int64_t> secondsOf(const Json& v) {
  if (v.isInt()) return v.asInt();
  if (v.isNumber() && std::isfinite(v.asDouble()) && std::fabs(v.asDouble()) < 9.2e18)
    return static_cast<int64_t>(std::floor(v.asDouble()));
  return std::nullopt;
}

std::optional<std::string> stringOf(const Json& v) {
  if (v.isString()) return v.asString();
  return std::nullopt;
}

std::optional<std::string> numberTextOf(const Json& v) {
  if (v.isNumber() && std::isfinite(v.asDouble())) return v.dump();
  return std::nullopt;
}

Mapped fail(std::string why) { return Mapped{std::nullopt, std::move(why)}; }

std::string idText(const Json& v) {
  if (v.isString()) return v.asString();
  if (v.isInt()) return std::to_string(v.asInt());
  return "";
}

void appendOptionalString(std::string& out, const std::optional<std::string>& s) {
  if (s)
    Json::appendString(out, *s);
  else
    out += "null";
}

void appendOptionalInt(std::string& out, const std::optional<int64_t>& v) {
  out += v ? std::to_string(*v) : "null";
}

Json parsedDetails(const std::string& text) {
  try {
    return Json::parse(text);
  } catch (const JsonError&) {
    // Only a damaged file can hold bad text here (the store only gets dumped JSON).
    return Json();
  }
}

Json optionalJson(const std::optional<int64_t>& v) { return v ? Json(*v) : Json(); }
Json optionalJson(const std::optional<std::string>& v) { return v ? Json(*v) : Json(); }
Json amountJson(const std::optional<std::string>& v) {
  if (!v) return Json();
  try {
    return Json::parse(*v);
  } catch (const JsonError&) {
    return Json();
  }
}

}  // namespace

Mapped fromSpec(const Json& e) {
  if (!e.isObject()) return fail("a receipt is a " + e.typeName() + ", not an object");
  const std::string id = idText(e["id"]);
  if (id.empty()) return fail("a receipt has no usable id (got " + e["id"].dump() + ")");
  if (!e["market"].isString() || !isMarket(e["market"].asString()))
    return fail("receipt " + id + " has market " + e["market"].dump() +
                ", not one of compute, storage, energy, ad");
  StoredReceipt r;
  r.id = id;
  r.market = e["market"].asString();
  r.block_height = intOf(e["block_height"]);
  r.timestamp = secondsOf(e["timestamp"]);
  r.provider = stringOf(e["provider"]);
  r.consumer = stringOf(e["consumer"]);
  r.amount = numberTextOf(e["amount"]);
  r.status = stringOf(e["status"]);
  r.details = e["details"].dump();
  return Mapped{std::move(r), ""};
}

Mapped fromSettlement(const Json& e) {
  if (!e.isObject()) return fail("a ledger entry is a " + e.typeName() + ", not an object");
  const std::optional<int64_t> seq = intOf(e["sequence"]);
  if (!seq)
    return fail("a ledger entry has no integer sequence (got " + e["sequence"].dump() + ")");
  StoredReceipt r;
  r.id = "settlement:" + std::to_string(*seq);
  r.market = "compute";
  r.timestamp = secondsOf(e["timestamp"]);
  r.provider = stringOf(e["entity"]);
  r.amount = numberTextOf(e["delta"]);
  r.details = e.dump();
  return Mapped{std::move(r), ""};
}

Mapped fromEnergy(const Json& e) {
  if (!e.isObject()) return fail("an energy receipt is a " + e.typeName() + ", not an object");
  if (!e["meter_hash"].isString() || e["meter_hash"].asString().empty())
    return fail("an energy receipt has no meter_hash (got " + e["meter_hash"].dump() + ")");
  StoredReceipt r;
  r.id = "energy:" + e["meter_hash"].asString();
  r.market = "energy";
  r.block_height = intOf(e["block_settled"]);
  r.provider = stringOf(e["seller"]);
  r.consumer = stringOf(e["buyer"]);
  r.amount = numberTextOf(e["price_paid"]);
  r.details = e.dump();
  return Mapped{std::move(r), ""};
}

Mapped fromSla(const Json& e) {
  if (!e.isObject()) return fail("an SLA record is a " + e.typeName() + ", not an object");
  const std::string job = idText(e["job_id"]);
  if (job.empty()) return fail("an SLA record has no job_id (got " + e["job_id"].dump() + ")");
  StoredReceipt r;
  r.id = "sla:" + job;
  r.market = "compute";
  r.timestamp = secondsOf(e["resolved_at"]);
  r.provider = stringOf(e["provider"]);
  r.consumer = stringOf(e["buyer"]);
  r.status = stringOf(e["outcome"]);
  r.details = e.dump();
  return Mapped{std::move(r), ""};
}

bool isSpecAuditShape(const Json& result) {
  return result.isObject() && result["receipts"].isArray() && result["total"].isNumber();
}

Json receiptJson(const StoredReceipt& r) {
  return Json{{"id", r.id},
              {"market", r.market},
              {"block_height", optionalJson(r.block_height)},
              {"timestamp", optionalJson(r.timestamp)},
              {"provider", optionalJson(r.provider)},
              {"consumer", optionalJson(r.consumer)},
              {"amount", amountJson(r.amount)},
              {"status", optionalJson(r.status)},
              {"details", parsedDetails(r.details)}};
}

Json operationJson(const StoredReceipt& r) {
  return Json{{"id", r.id},
              {"type", r.market},
              {"timestamp", optionalJson(r.timestamp)},
              {"block_height", optionalJson(r.block_height)},
              {"provider", optionalJson(r.provider)},
              {"consumer", optionalJson(r.consumer)},
              {"amount", amountJson(r.amount)},
              {"status", optionalJson(r.status)},
              {"details", parsedDetails(r.details)}};
}

void appendReceiptText(std::string& out, const StoredReceipt& r) {
  out += "{\"id\":";
  Json::appendString(out, r.id);
  out += ",\"market\":";
  Json::appendString(out, r.market);
  out += ",\"block_height\":";
  appendOptionalInt(out, r.block_height);
  out += ",\"timestamp\":";
  appendOptionalInt(out, r.timestamp);
  out += ",\"provider\":";
  appendOptionalString(out, r.provider);
  out += ",\"consumer\":";
  appendOptionalString(out, r.consumer);
  out += ",\"amount\":";
  out += r.amount ? *r.amount : "null";
  out += ",\"status\":";
  appendOptionalString(out, r.status);
  out += ",\"details\":";
  out += r.details.empty() ? "null" : r.details;
  out += '}';
}

namespace {

std::string quoted(const std::string& v) {
  // Echo at most 64 characters of what the client sent; the message must stay small.
  std::string shown = v.size() > 64 ? v.substr(0, 64) + "..." : v;
  std::string out;
  Json::appendString(out, shown);
  out.front() = '\'';
  out.back() = '\'';
  return out;
}

// Decimal digits only (no sign, no spaces), within [lo, hi].
std::optional<int64_t> parseBoundedInt(const std::string& s, int64_t lo, int64_t hi) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  const int64_t v = std::stoll(s);
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

}  // namespace

ParsedQuery parseReceiptQuery(const std::vector<std::pair<std::string, std::string>>& params) {
  ReceiptQuery q;
  q.limit = kDefaultLimit;
  bool seen_limit = false, seen_offset = false, seen_market = false;
  auto error = [](std::string m) { return ParsedQuery{std::nullopt, std::move(m)}; };
  for (const auto& [key, value] : params) {
    if (key == "limit") {
      if (seen_limit) return error("query parameter 'limit' is given more than once");
      seen_limit = true;
      auto v = parseBoundedInt(value, 1, kMaxLimit);
      if (!v)
        return error("query parameter 'limit' must be an integer from 1 to 1000, got " +
                     quoted(value));
      q.limit = *v;
    } else if (key == "offset") {
      if (seen_offset) return error("query parameter 'offset' is given more than once");
      seen_offset = true;
      auto v = parseBoundedInt(value, 0, std::numeric_limits<int64_t>::max());
      if (!v)
        return error("query parameter 'offset' must be an integer >= 0, got " + quoted(value));
      q.offset = *v;
    } else if (key == "market") {
      if (seen_market) return error("query parameter 'market' is given more than once");
      seen_market = true;
      if (!isMarket(value))
        return error("query parameter 'market' must be one of compute, storage, energy, ad, got " +
                     quoted(value));
      q.market = value;
    } else if (key == "before") {
      if (q.before) return error("query parameter 'before' is given more than once");
      q.before = parseBoundedInt(value, 1, std::numeric_limits<int64_t>::max());
      if (!q.before)
        return error(
            "query parameter 'before' must be a cursor returned as 'next' by a page of "
            "/theblock/receipts, got " +
            quoted(value));
    }
    // Any other parameter (a cache-buster `_=123`) is ignored, as the guide's server does.
  }
  if (q.before && seen_offset)
    return error(
        "query parameter 'before' cannot be combined with 'offset': a cursor already "
        "says where the page starts");
  return ParsedQuery{q, ""};
}

std::optional<int64_t> cursorInt(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  try {
    return intOf(Json::parse(*text));
  } catch (const JsonError&) {
    return std::nullopt;
  }
}

}  // namespace receipts
}  // namespace blockbuster
