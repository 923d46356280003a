#include "history/history_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>

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

constexpr uint64_t kFnvOffset = 1469598103934665603ULL;

uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

// The file is written and read through a buffer of 64 KiB, with its checksum kept as it goes:
// never the whole file in memory (0.5 MB for the default hour, up to 45 MB for 24 h at 1 s),
// which every save once a minute and the load at start-up used to hold, twice over.
class FileWriter {
 public:
  explicit FileWriter(FILE* f) : f_(f) {}
  template <typename T>
  void put(T v) {
    write(&v, sizeof v);
  }
  void write(const void* data, size_t n) {
    hash_ = fnv1a(hash_, data, n);
    ok_ = ok_ && std::fwrite(data, 1, n, f_) == n;
  }
  /// The checksum of everything written, then written itself.
  bool finish() {
    uint64_t sum = hash_;
    ok_ = ok_ && std::fwrite(&sum, 1, sizeof sum, f_) == sizeof sum;
    return ok_;
  }

 private:
  FILE* f_;
  uint64_t hash_ = kFnvOffset;
  bool ok_ = true;
};

class FileReader {
 public:
  FileReader(FILE* f, uint64_t body_bytes) : f_(f), left_(body_bytes) {}
  template <typename T>
  bool get(T& v) {
    return read(&v, sizeof v);
  }
  bool read(void* out, size_t n) {
    if (n > left_ || std::fread(out, 1, n, f_) != n) return false;
    hash_ = fnv1a(hash_, out, n);
    left_ -= n;
    return true;
  }
  uint64_t left() const { return left_; }
  uint64_t hash() const { return hash_; }

 private:
  FILE* f_;
  uint64_t left_;
  uint64_t hash_ = kFnvOffset;
};

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

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
  return seriesIndexIn(names_, index_, name);
}

int HistoryStore::seriesIndexIn(std::vector<std::string>& names, std::map<std::string, int>& index,
                                const std::string& name) {
  auto it = index.find(name);
  if (it != index.end()) return it->second;
  // Names go into JSON and the file unescaped: only what a field path is made of.
  if (name.empty() || name.size() > kMaxName ||
      name.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") !=
          std::string::npos)
    return -1;
  if (names.size() >= options_.max_series) {
    if (!warned_full_)
      logWarn("history", "more than " + std::to_string(options_.max_series) + " series: '" + name +
                             "' and any further series are not recorded");
    warned_full_ = true;
    return -1;
  }
  int i = static_cast<int>(names.size());
  names.push_back(name);
  index.emplace(name, i);
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
  const std::string tmp = path + ".tmp";
  File f(std::fopen(tmp.c_str(), "wb"));
  if (!f) return "cannot write " + tmp + ": " + std::strerror(errno);
  std::setvbuf(f.get(), nullptr, _IOFBF, 64 * 1024);
  FileWriter out(f.get());
  {
    // Held while the rows go into the file's buffer (page cache, not the disk: about 1 ms for
    // the default hour); the fsync comes after.
    std::lock_guard<std::mutex> lock(mutex_);
    out.write(kMagic, sizeof kMagic);
    out.put<uint32_t>(static_cast<uint32_t>(names_.size()));
    out.put<int64_t>(options_.resolution_ms);
    out.put<uint64_t>(rows_.size());
    for (const auto& n : names_) {
      out.put<uint16_t>(static_cast<uint16_t>(n.size()));
      out.write(n.data(), n.size());
    }
    std::vector<double> values(names_.size());
    for (const auto& r : rows_) {
      out.put<int64_t>(r.t);
      for (size_t i = 0; i < names_.size(); ++i) values[i] = i < r.v.size() ? r.v[i] : NAN;
      out.write(values.data(), values.size() * sizeof(double));
    }
  }
  bool ok = out.finish();
  ok = std::fflush(f.get()) == 0 && ok;
  ok = ::fsync(fileno(f.get())) == 0 && ok;
  int err = errno;
  f.reset();
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
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) return "";  // no history yet
  std::setvbuf(f.get(), nullptr, _IOFBF, 64 * 1024);
  struct stat st {};
  if (::fstat(fileno(f.get()), &st) != 0)
    return "cannot read " + path + ": " + std::strerror(errno);
  const auto size = static_cast<uint64_t>(st.st_size);
  // The largest file any window writes (24 h at 1 s, 64 series: 45 MB), so that a file of a
  // longer window than today's still loads (its newest rows).
  if (size > (uint64_t{64} << 20)) return path + " is larger than any history this agent writes";
  char magic[sizeof kMagic];
  if (size < sizeof kMagic + 8) return path + " is not a history file of this agent";
  FileReader in(f.get(), size - 8);  // the last 8 bytes: the checksum of the rest
  if (!in.read(magic, sizeof magic) || std::memcmp(magic, kMagic, sizeof kMagic) != 0)
    return path + " is not a history file of this agent";
  uint32_t nseries = 0;
  int64_t resolution = 0;
  uint64_t nrows = 0;
  if (!in.get(nseries) || !in.get(resolution) || !in.get(nrows) || nseries > 100000)
    return path + " is damaged (header)";
  // Series as this store would name them (a fresh store: load replaces everything).
  std::vector<std::string> names;
  std::map<std::string, int> index;
  std::vector<int> map;  // file column -> series index, -1 = not kept
  for (uint32_t i = 0; i < nseries; ++i) {
    uint16_t len = 0;
    std::string name;
    if (!in.get(len) || in.left() < len) return path + " is damaged (series names)";
    name.resize(len);
    if (!in.read(name.data(), len)) return path + " is damaged (series names)";
    map.push_back(seriesIndexIn(names, index, name));
  }
  if (in.left() != nrows * (8 + 8 * static_cast<uint64_t>(nseries)))
    return path + " is damaged (row count)";
  // Straight into the rows kept: the window's, the newest `capacity_` of them, in order.
  std::deque<Row> rows;
  const int64_t since = now_ms - options_.window_seconds * 1000;
  std::vector<double> file_row(nseries);
  for (uint64_t r = 0; r < nrows; ++r) {
    int64_t t = 0;
    if (!in.get(t) || !in.read(file_row.data(), file_row.size() * sizeof(double)))
      return path + " is damaged (rows)";
    if (t <= since || t > now_ms + 60000) continue;
    if (!rows.empty() && rows.back().t >= t) continue;  // out of order: skip
    Row row{t, std::vector<double>(names.size(), NAN)};
    for (size_t i = 0; i < map.size(); ++i)
      if (map[i] >= 0) row.v[static_cast<size_t>(map[i])] = file_row[i];
    rows.push_back(std::move(row));
    if (rows.size() > capacity_) rows.pop_front();
  }
  uint64_t sum = 0;
  if (std::fread(&sum, 1, sizeof sum, f.get()) != sizeof sum || in.hash() != sum)
    return path + " is damaged (checksum mismatch)";
  std::lock_guard<std::mutex> lock(mutex_);
  rows_ = std::move(rows);
  names_ = std::move(names);
  index_ = std::move(index);
  return "";
}

}  // namespace bb
