// The latest value of every plugin metric a plugin marked for history (BB_METRIC_FLAG_HISTORY),
// as series "<plugin>.<metric>[:<label value>...]", for the history sampler. Plugins write from
// their threads, the history thread reads. A value not refreshed within its plugin's stale
// time reads as unknown (NaN): a failing plugin's last value is never recorded again.
#pragma once

#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace bb {

class HistoryMarks {
 public:
  static constexpr size_t kMaxSeries = 256;  ///< beyond it new series are ignored

  /// NaN = the value is unknown now (the metric was removed).
  void set(const std::string& series, double value, std::chrono::milliseconds stale_after) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = values_.find(series);
    if (it == values_.end() && values_.size() >= kMaxSeries) return;
    values_[series] = Entry{value, std::chrono::steady_clock::now(), stale_after};
  }

  /// Every series and its value now (NaN when unknown or stale).
  std::vector<std::pair<std::string, double>> snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::pair<std::string, double>> out;
    for (const auto& [name, e] : values_)
      out.emplace_back(name, now - e.updated > e.stale_after ? NAN : e.value);
    return out;
  }

 private:
  struct Entry {
    double value;
    std::chrono::steady_clock::time_point updated;
    std::chrono::milliseconds stale_after;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Entry> values_;
};

}  // namespace bb
