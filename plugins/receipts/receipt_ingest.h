// Incremental ingest of the node's receipts into a ReceiptStore, for both node profiles.
// The node is reached through the plugins' NodePort (the glue lends it the SDK host, host_port.h),
// so the whole algorithm is tested against a scripted node.
#pragma once

#include <blockbuster/json.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "node_port.h"
#include "receipt_store.h"

namespace blockbuster {
namespace receipts {

using node::Answer;
using node::Call;
using node::NodePort;
using node::Profile;
using node::profileName;

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
  IngestReport run(NodePort& node, int64_t now);

  Profile profile() const noexcept { return profile_; }

 private:
  IngestReport runSpec(NodePort& node, Answer first, int64_t start, int64_t now);
  IngestReport runSpecUnordered(NodePort& node, const Answer& first, int64_t start, int64_t now);
  IngestReport runTheBlock(NodePort& node, int64_t now);

  ReceiptStore& store_;
  IngestOptions options_;
  Profile profile_ = Profile::kUnknown;
};

}  // namespace receipts
}  // namespace blockbuster
