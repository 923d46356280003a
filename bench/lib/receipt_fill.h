// Bench only: fills a receipts store quickly through ReceiptStore::ingest itself (the real
// schema, indexes and order index), batches of 10 000 in one transaction each, instead of
// ingesting over RPC for hours. Used by bench/micro (BM_ReceiptPage*) and bb-receipts-fill
// (bench/mixed). Receipts are spread evenly over the four markets; ids are "<prefix><n>".
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "receipt_store.h"

namespace bbbench {

inline void fillReceipts(blockbuster::receipts::ReceiptStore& store, int64_t count,
                         const std::string& prefix = "fill-", int64_t now = 1700000000) {
  namespace rc = blockbuster::receipts;
  const auto& markets = rc::marketNames();
  const int64_t batch_size = 10000;
  for (int64_t start = 0; start < count; start += batch_size) {
    std::vector<rc::StoredReceipt> batch;
    for (int64_t i = start; i < std::min(count, start + batch_size); ++i) {
      rc::StoredReceipt r;
      r.market = markets[static_cast<size_t>(i) % markets.size()];
      r.id = prefix + std::to_string(i);
      r.block_height = i / 4;
      r.timestamp = now - count / 4 + i / 4;
      r.provider = "acct-" + std::to_string(i % 200);
      r.consumer = "acct-" + std::to_string((i * 7) % 200);
      r.amount = std::to_string(i % 1000) + ".25";
      r.status = "completed";
      r.details = "{\"id\":\"" + r.id + "\",\"market\":\"" + r.market +
                  "\",\"block_height\":" + std::to_string(*r.block_height) +
                  ",\"amount\":" + *r.amount + ",\"status\":\"completed\"}";
      batch.push_back(std::move(r));
    }
    store.ingest(batch, {}, now);
  }
}

}  // namespace bbbench
