// Named numeric features that plugins contribute for the feature stream (downstream models).
// Thread-safe; names are "<plugin>.<feature>"; NaN means unknown (sent as null).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace bb {

class FeatureStore {
 public:
  struct Vector {
    std::vector<std::string> names;                   ///< sorted, stable
    std::vector<double> values;                       ///< NaN = unknown
    std::chrono::steady_clock::time_point updated{};  ///< last set(); epoch if never
    uint64_t version = 0;
  };

  void set(const std::string& name, double value) {
    std::lock_guard<std::mutex> lock(mutex_);
    values_[name] = value;
    updated_ = std::chrono::steady_clock::now();
    ++version_;
  }
  void removePrefix(const std::string& prefix) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = values_.begin(); it != values_.end();) {
      if (it->first.rfind(prefix, 0) == 0)
        it = values_.erase(it);
      else
        ++it;
    }
    ++version_;
  }
  Vector snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    Vector v;
    for (const auto& kv : values_) {
      v.names.push_back(kv.first);
      v.values.push_back(kv.second);
    }
    v.updated = updated_;
    v.version = version_;
    return v;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, double> values_;
  std::chrono::steady_clock::time_point updated_{};
  uint64_t version_ = 0;
};

}  // namespace bb
