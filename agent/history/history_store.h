// The agent's history: a bounded ring of rows, one row per sampling tick (the collection
// interval), each row holding one value per series (NaN = unknown, served as null). Written to a
// file in the state directory so that it survives a restart (docs/architecture.md, "History").
//
// Bounds, whatever runs for however long: at most `capacity()` rows (window / resolution) and
// `max_series` series, so memory is at most capacity * 8 * (1 + max_series) bytes for the values
// and times, and the file at most fileBound() bytes. Thread-safe: the sampler appends and saves,
// HTTP threads and the stream hub read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace bb {

struct HistoryOptions {
  int64_t window_seconds = 3600;  ///< history.window
  int64_t resolution_ms = 2000;   ///< one row per collection interval
  size_t max_series = 64;         ///< series beyond it are not recorded (logged once)
};

class HistoryStore {
 public:
  explicit HistoryStore(HistoryOptions options);

  /// Appends a row at `unix_ms`: the values of the given series; every other known series gets
  /// null. A row not after the last one (a clock stepping back) replaces the rows it overlaps.
  void append(int64_t unix_ms, const std::vector<std::pair<std::string, double>>& values);

  /// The body of GET /theblock/history: rows after `now_ms - window_seconds * 1000`, for
  /// `series` (empty = every series), oldest first. A requested series that is not recorded is
  /// an empty list.
  std::string render(int64_t window_seconds, const std::vector<std::string>& series,
                     int64_t now_ms) const;
  /// The last row as a history body (the `history` stream's message), or "" when empty.
  std::string renderLast() const;

  std::vector<std::string> seriesNames() const;
  bool hasSeries(const std::string& name) const;
  size_t rows() const;
  size_t capacity() const { return capacity_; }
  const HistoryOptions& options() const { return options_; }
  /// Bytes held by the rows now (times and values), and the most they can ever take.
  size_t memoryBytes() const;
  size_t memoryBound() const;
  /// The most the file can take, in bytes.
  size_t fileBound() const;

  /// Writes every row to `path` (a temporary file, then rename: a crash leaves the old file).
  /// Returns "" or what went wrong.
  std::string save(const std::string& path) const;
  /// Reads `path` written by save(): keeps the rows within the window of `now_ms` (at most
  /// capacity()). Returns "" (also when the file does not exist) or what is wrong with it; the
  /// store is then unchanged.
  std::string load(const std::string& path, int64_t now_ms);

 private:
  struct Row {
    int64_t t;
    std::vector<double> v;  // by series index; shorter = null for the later series
  };
  int seriesIndex(const std::string& name);  // -1 when over max_series
  /// The same rule on the given names (load builds them apart, then swaps them in).
  int seriesIndexIn(std::vector<std::string>& names, std::map<std::string, int>& index,
                    const std::string& name);
  std::string renderRows(size_t first, const std::vector<int>& idx,
                         const std::vector<std::string>& names, int64_t window_seconds,
                         int64_t now_ms) const;

  HistoryOptions options_;
  size_t capacity_;
  mutable std::mutex mutex_;
  std::deque<Row> rows_;
  std::vector<std::string> names_;
  std::map<std::string, int> index_;
  bool warned_full_ = false;
};

/// Appends `v` as JSON (shortest text that reads back the same double; null when not finite).
void appendJsonNumber(std::string& out, double v);

}  // namespace bb
