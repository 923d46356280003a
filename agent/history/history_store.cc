#include "history/history_store.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "util/log.h"

namespace bb {
namespace {

// File layout (host byte order: the file never leaves the machine that wrote it):
//   "BBHIST01", u32 series count, i64 resolution_ms, u64 row count,
//   per series: u16 name length + name bytes,
//   per row: i64 unix_ms + one f64 per series (NaN = null),
//   u64 FNV-1a of everything before it.
constexpr char kMagic[8] = {'B', 'B', 'H', 'I', 'S', 'T', '0', '1'};
constexpr size_t kMaxName = 200;

uint64_t fnv1a(const std::string& data) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

template <typename T>
void put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

struct Reader {
  const std::string& data;
  size_t pos = 0;
  template <typename T>
  bool get(T& v) {
    if (data.size() - pos < sizeof(T)) return false;
    std::memcpy(&v, data.data() + pos, sizeof(T));
    pos += sizeof(T);
    return true;
  }
};

}  // namespace

void appendJsonNumber(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  if (v == std::floor(v) && std::fabs(v) < 9.007e15) {
    out += std::to_string(static_cast<int64_t>(v));
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

HistoryStore::HistoryStore(HistoryOptions options)
    : options_(options),
      capacity_(static_cast<size_t>(std::max<int64_t>(
          1, options.window_seconds * 1000 / std::max<int64_t>(1, options.resolution_ms)))) {}

int HistoryStore::seriesIndex(const std::string& name) {
  auto it = index_.find(name);
  if (it != index_.end()) return it->second;
  // Names go into JSON and the file unescaped: only what a field path is made of.
  if (name.empty() || name.size() > kMaxName ||
      name.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") !=
          std::string::npos)
    return -1;
  if (names_.size() >= options_.max_series) {
    if (!warned_full_)
      logWarn("history", "more than " + std::to_string(options_.max_series) + " series: '" + name +
                             "' and any further series are not recorded");
    warned_full_ = true;
    return -1;
  }
  int i = static_cast<int>(names_.size());
  names_.push_back(name);
  index_.emplace(name, i);
  return i;
}

void HistoryStore::append(int64_t unix_ms,
                          const std::vector<std::pair<std::string, double>>& values) {
  std::lock_guard<std::mutex> lock(mutex_);
  Row row{unix_ms, {}};
  for (const auto& [name, v] : values) {
    int i = seriesIndex(name);
    if (i < 0) continue;
    if (row.v.size() <= static_cast<size_t>(i)) row.v.resize(static_cast<size_t>(i) + 1, NAN);
    row.v[static_cast<size_t>(i)] = v;
  }
  row.v.shrink_to_fit();
  // The wall clock stepped back (or the same tick twice): the newer reading wins.
  while (!rows_.empty() && rows_.back().t >= unix_ms) rows_.pop_back();
  rows_.push_back(std::move(row));
  while (rows_.size() > capacity_) rows_.pop_front();
}

std::vector<std::string> HistoryStore::seriesNames() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return names_;
}

bool HistoryStore::hasSeries(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return index_.count(name) != 0;
}

size_t HistoryStore::rows() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return rows_.size();
}

size_t HistoryStore::memoryBytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  for (const auto& r : rows_) n += sizeof(Row) + 16 + r.v.capacity() * sizeof(double);
  return n;
}

size_t HistoryStore::memoryBound() const {
  // Each row: its struct in the deque, the allocator's header and one double per series.
  return capacity_ * (sizeof(Row) + 16 + options_.max_series * sizeof(double));
}

size_t HistoryStore::fileBound() const {
  return sizeof(kMagic) + 4 + 8 + 8 + options_.max_series * (2 + kMaxName) +
         capacity_ * (8 + options_.max_series * 8) + 8;
}

std::string HistoryStore::renderRows(size_t first, const std::vector<int>& idx,
                                     const std::vector<std::string>& names, int64_t window_seconds,
                                     int64_t now_ms) const {
  std::string out;
  out.reserve(64 + names.size() * (rows_.size() - first) * 24);
  out += "{\"series\":{";
  for (size_t k = 0; k < names.size(); ++k) {
    if (k) out += ',';
    out += '"';
    out += names[k];  // series names are [A-Za-z0-9_.:-] (checked where they are made)
    out += "\":[";
    if (idx[k] >= 0) {
      const size_t i = static_cast<size_t>(idx[k]);
      for (size_t r = first; r < rows_.size(); ++r) {
        if (r > first) out += ',';
        out += '[';
        out += std::to_string(rows_[r].t);
        out += ',';
        appendJsonNumber(out, i < rows_[r].v.size() ? rows_[r].v[i] : NAN);
        out += ']';
      }
    }
    out += ']';
  }
  out += "},\"window\":";
  out += std::to_string(window_seconds);
  out += ",\"resolution_seconds\":";
  appendJsonNumber(out, static_cast<double>(options_.resolution_ms) / 1000.0);
  out += ",\"timestamp\":";
  out += std::to_string(now_ms / 1000);
  out += '}';
  return out;
}

std::string HistoryStore::render(int64_t window_seconds, const std::vector<std::string>& series,
                                 int64_t now_ms) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::vector<std::string>& names = series.empty() ? names_ : series;
  std::vector<int> idx;
  for (const auto& n : names) {
    auto it = index_.find(n);
    idx.push_back(it == index_.end() ? -1 : it->second);
  }
  const int64_t since = now_ms - window_seconds * 1000;
  // (now - window, now]: a window of W seconds holds W / resolution rows.
  auto it = std::upper_bound(rows_.begin(), rows_.end(), since,
                             [](int64_t t, const Row& r) { return t < r.t; });
  return renderRows(static_cast<size_t>(std::distance(rows_.begin(), it)), idx, names,
                    window_seconds, now_ms);
}

std::string HistoryStore::renderLast() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (rows_.empty()) return "";
  std::vector<int> idx;
  for (size_t i = 0; i < names_.size(); ++i) idx.push_back(static_cast<int>(i));
  int64_t res_s = std::max<int64_t>(1, (options_.resolution_ms + 999) / 1000);
  return renderRows(rows_.size() - 1, idx, names_, res_s, rows_.back().t);
}

std::string HistoryStore::save(const std::string& path) const {
  std::string data;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    data.reserve(64 + names_.size() * 24 + rows_.size() * (8 + names_.size() * 8));
    data.append(kMagic, sizeof kMagic);
    put<uint32_t>(data, static_cast<uint32_t>(names_.size()));
    put<int64_t>(data, options_.resolution_ms);
    put<uint64_t>(data, rows_.size());
    for (const auto& n : names_) {
      put<uint16_t>(data, static_cast<uint16_t>(n.size()));
      data += n;
    }
    for (const auto& r : rows_) {
      put<int64_t>(data, r.t);
      for (size_t i = 0; i < names_.size(); ++i) put<double>(data, i < r.v.size() ? r.v[i] : NAN);
    }
  }
  put<uint64_t>(data, fnv1a(data));
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return "cannot write " + tmp + ": " + std::strerror(errno);
  bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  ok = std::fflush(f) == 0 && ok;
  ok = ::fsync(fileno(f)) == 0 && ok;
  int err = errno;
  std::fclose(f);
  if (!ok) {
    std::remove(tmp.c_str());
    return "cannot write " + tmp + ": " + std::strerror(err);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    std::remove(tmp.c_str());
    return "cannot replace " + path + ": " + std::strerror(err);
  }
  return "";
}

std::string HistoryStore::load(const std::string& path, int64_t now_ms) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";  // no history yet
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The largest file any window writes (24 h at 1 s, 64 series: 45 MB), so that a file of a
  // longer window than today's still loads (its newest rows).
  if (data.size() > (size_t{64} << 20))
    return path + " is larger than any history this agent writes";
  if (data.size() < sizeof kMagic + 8 || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0)
    return path + " is not a history file of this agent";
  uint64_t sum = 0;
  std::memcpy(&sum, data.data() + data.size() - 8, 8);
  std::string body = data.substr(0, data.size() - 8);
  if (fnv1a(body) != sum) return path + " is damaged (checksum mismatch)";
  Reader rd{body, sizeof kMagic};
  uint32_t nseries = 0;
  int64_t resolution = 0;
  uint64_t nrows = 0;
  if (!rd.get(nseries) || !rd.get(resolution) || !rd.get(nrows) || nseries > 100000)
    return path + " is damaged (header)";
  std::vector<std::string> names;
  for (uint32_t i = 0; i < nseries; ++i) {
    uint16_t len = 0;
    if (!rd.get(len) || body.size() - rd.pos < len) return path + " is damaged (series names)";
    names.push_back(body.substr(rd.pos, len));
    rd.pos += len;
  }
  if ((body.size() - rd.pos) != nrows * (8 + 8 * static_cast<uint64_t>(nseries)))
    return path + " is damaged (row count)";
  std::vector<std::pair<int64_t, std::vector<double>>> rows;
  const int64_t since = now_ms - options_.window_seconds * 1000;
  for (uint64_t r = 0; r < nrows; ++r) {
    int64_t t = 0;
    rd.get(t);
    std::vector<double> v(nseries);
    for (auto& x : v) rd.get(x);
    if (t > since && t <= now_ms + 60000) rows.emplace_back(t, std::move(v));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  rows_.clear();
  names_.clear();
  index_.clear();
  std::vector<int> map;
  for (const auto& n : names) map.push_back(n.size() <= kMaxName ? seriesIndex(n) : -1);
  size_t start = rows.size() > capacity_ ? rows.size() - capacity_ : 0;
  for (size_t r = start; r < rows.size(); ++r) {
    Row row{rows[r].first, std::vector<double>(names_.size(), NAN)};
    for (size_t i = 0; i < map.size(); ++i)
      if (map[i] >= 0) row.v[static_cast<size_t>(map[i])] = rows[r].second[i];
    if (!rows_.empty() && rows_.back().t >= row.t) continue;  // out of order: skip
    rows_.push_back(std::move(row));
  }
  return "";
}

}  // namespace bb
