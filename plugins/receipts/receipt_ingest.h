// Incremental ingest of the node's receipts into a ReceiptStore, for both node profiles.
// The node is reached through NodeClient (the plugin's glue adapts the SDK host to it), so the
// whole algorithm is tested against a scripted node.
#pragma once

#include <blockbuster/json.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "receipt_store.h"

namespace blockbuster {
namespace receipts {

/// One answer of the node.
struct NodeAnswer {
  bool ok = false;
  Json value;                     ///< the result when ok
  bool method_not_found = false;  ///< JSON-RPC -32601
  std::string message;            ///< why it failed
};

/// The node as the ingest sees it. Implementations must be usable from the collect thread.
class NodeClient {
 public:
  virtual ~NodeClient() = default;
  /// Calls every method (concurrently where the implementation can); answers in call order.
  virtual std::vector<NodeAnswer> callMany(
      const std::vector<std::pair<std::string, Json>>& calls) = 0;
  NodeAnswer call(const std::string& method, const Json& params) {
    return callMany({{method, params}}).at(0);
  }
};

enum class Profile { kUnknown, kSpec, kTheBlock };
const char* profileName(Profile p);

struct IngestOptions {
  int64_t page_size = 500;
  /// Re-reads allowed in a row when receipts arrive (or are dropped) while paging: full re-reads
  /// from offset 0 for a node that does not list newest first, missed oldest pages otherwise.
  int max_passes = 3;
  /// Receipts held in memory at once; a larger unordered backlog (or one block holding more
  /// receipts than this) is committed without moving the cursor and finished in later cycles.
  int64_t max_buffer = 200000;
  /// compute_market.sla_history {"limit"} (the node keeps no cursor for it).
  int64_t sla_limit = 1000;
};

/// What one cycle did.
struct IngestReport {
  Profile profile = Profile::kUnknown;
  IngestOutcome outcome;
  bool complete = false;  ///< every receipt the node had was read and the cursor moved
  std::map<std::string, std::string> unavailable;  ///< source method -> why it gave nothing
  std::vector<std::string> warnings;               ///< worth a warn log
  std::vector<std::string> progress;               ///< a backlog cut short, read on: debug log
  int64_t rejected = 0;                            ///< entries that could not be mapped
  /// The highest block height the node listed this cycle (spec: its newest page), when seen:
  /// the end of a catch-up, for the progress log.
  std::optional<int64_t> newest_height;
};

/// Runs ingest cycles. Not thread-safe: one cycle at a time (the agent calls collect serially).
/// Keeps a reference to the store, which must outlive it.
class Ingestor {
 public:
  Ingestor(ReceiptStore& store, IngestOptions options);

  /// Reads what is new on the node and commits it with the moved cursors. A spec backlog is
  /// read oldest first in pages, each committed with the cursor it moves in one transaction, so
  /// a cycle cut short (by a failed call, e.g. past the collect deadline) keeps its progress;
  /// otherwise one transaction per cycle. Throws std::runtime_error (saying what failed) when
  /// the node gave nothing usable; nothing is committed then.
  IngestReport run(NodeClient& node, int64_t now);

  Profile profile() const noexcept { return profile_; }

 private:
  IngestReport runSpec(NodeClient& node, NodeAnswer first, int64_t start, int64_t now);
  IngestReport runSpecUnordered(NodeClient& node, const NodeAnswer& first, int64_t start,
                                int64_t now);
  IngestReport runTheBlock(NodeClient& node, int64_t now);

  ReceiptStore& store_;
  IngestOptions options_;
  Profile profile_ = Profile::kUnknown;
};

}  // namespace receipts
}  // namespace blockbuster
