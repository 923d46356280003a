#include "ws/stream_hub.h"

#include <cmath>
#include <utility>

#include "util/log.h"
#include "ws/deflate.h"
#include "ws/frame.h"

namespace bb::ws {
namespace {

FramePtr textFrame(const std::string& json) {
  return std::make_shared<const std::string>(encodeText(json));
}

constexpr uint32_t bit(int stream) { return 1u << stream; }

constexpr double kSlowSource = 0.5;  // seconds

// The streams time alone changes (data expires without any publish).
constexpr uint32_t timedStreams() {
  uint32_t mask = 0;
  for (int s = 0; s < kStreamCount; ++s)
    if (api::streamRow(s)->timed) mask |= bit(s);
  return mask;
}

}  // namespace

StreamHub::StreamHub(WsServer& server, const api::StreamBodies& bodies, FeatureStore* features,
                     HubOptions options)
    : server_(server), bodies_(bodies), features_(features), options_(options) {}

StreamHub::~StreamHub() { stop(); }

void StreamHub::attach(SnapshotStore& store) {
  // Runs on plugin threads: only mark and signal, the hub thread does the work.
  store.addListener([this](const SectionPtr& s) { sectionChanged(s ? s->name : std::string()); });
  store_ = &store;
  store.addIdleListener([this] {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      collects_ended_ = true;
    }
    cv_.notify_one();
  });
}

void StreamHub::sectionChanged(const std::string& section) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const uint32_t streams = api::streamsOf(section);
    if (streams != 0) changed_.signal(unixMillis());
    dirty_ |= streams;
  }
  cv_.notify_one();
}

void StreamHub::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = false;
    dirty_ = (1u << kStreamCount) - 1;
    changed_.signal(unixMillis());
  }
  thread_ = std::thread([this] { run(); });
}

void StreamHub::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void StreamHub::run() {
  using Clock = std::chrono::steady_clock;
  auto next_health = Clock::now();
  auto next_features = Clock::now();
  for (;;) {
    uint32_t dirty = 0;
    int64_t changed_ms = 0;
    bool collects_ended = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      auto wake_at = std::min(next_health, next_features);
      cv_.wait_until(lock, wake_at, [&] { return stopping_ || dirty_ != 0 || collects_ended_; });
      if (stopping_) return;
      dirty = dirty_;
      // Taken even when the timer alone wakes the hub: its pass is stamped with its own time.
      changed_ms = changed_.take(unixMillis());
      dirty_ = 0;
      collects_ended = std::exchange(collects_ended_, false);
    }
    auto now = Clock::now();
    if (now >= next_health) {
      // Time alone changes these: data expires (a market turns "unknown") without any
      // publish. Unchanged content is not sent again (fingerprints).
      dirty |= timedStreams();
      next_health = now + options_.health_interval;
    }
    if (dirty) pass(dirty, changed_ms);
    // Plugins set features in the same collect that publishes, so check them on every pass too.
    if (dirty || now >= next_features) {
      checkFeatures();
      next_features = now + options_.feature_interval;
    }
    if (dirty || collects_ended) settleIfQuiet();
  }
}

void StreamHub::settleIfQuiet() {
  if (store_ && store_->collectsInProgress() > 0) return;  // more of the block may come
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (dirty_ != 0) return;  // the next pass settles
  }
  server_.settle();
}

void StreamHub::pass(uint32_t dirty, int64_t changed_ms) {
  // Every stream of the pass goes out together: one write per client for all of them.
  std::vector<StreamMessage> batch;
  // Compressed once here for every client that negotiated it; for nobody, not at all.
  const bool deflate = server_.deflateClients() > 0;
  for (int s = 0; s < kStreamCount; ++s) {
    if (!(dirty & bit(s))) continue;
    std::optional<std::string> data;
    auto started = std::chrono::steady_clock::now();
    try {
      data = bodies_.streamBody(*api::streamRow(s));
      double took =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      // Every stream waits behind a slow one: worth a warning.
      if (took > kSlowSource)
        logWarn("ws", std::string("building stream ") + kStreams[static_cast<size_t>(s)] +
                          " took " + std::to_string(took) +
                          " s; WebSocket updates of every stream are delayed by as much");
    } catch (const std::exception& e) {
      logWarn("ws", std::string("building stream ") + kStreams[static_cast<size_t>(s)] +
                        " failed: " + e.what());
      continue;
    }
    if (!data) continue;
    std::string fp = s == kHealthStream ? healthFingerprint(*data) : contentFingerprint(*data);
    auto& last = last_fingerprint_[static_cast<size_t>(s)];
    const char* name = kStreams[static_cast<size_t>(s)];
    if (fp == last) {
      // No change to announce, but a client that connects now gets the uptime of now, not of
      // the last change (the health snapshot is rebuilt every health_interval).
      if (s == kHealthStream) {
        const std::string snapshot =
            dataMessage("snapshot", name, *data, seq_[static_cast<size_t>(s)], unixMillis());
        batch.push_back(StreamMessage{s, nullptr, textFrame(snapshot), nullptr,
                                      deflate ? deflatedFrame(snapshot) : nullptr});
      }
      continue;
    }
    last = std::move(fp);
    uint64_t seq = ++seq_[static_cast<size_t>(s)];
    const std::string update = dataMessage("update", name, *data, seq, changed_ms);
    const std::string snapshot = dataMessage("snapshot", name, *data, seq, changed_ms);
    batch.push_back(StreamMessage{s, textFrame(update), textFrame(snapshot),
                                  deflate ? deflatedFrame(update) : nullptr,
                                  deflate ? deflatedFrame(snapshot) : nullptr});
  }
  server_.publish(std::move(batch), changed_ms);
}

FramePtr StreamHub::deflatedFrame(const std::string& json) {
  std::string frame;
  try {
    if (!deflater_) deflater_ = std::make_unique<Deflater>();
    frame = encodeDeflatedText(json, *deflater_);
  } catch (const std::exception& e) {
    // zlib out of memory: every client gets the plain frame, which the extension allows.
    logWarn("ws", std::string("compressing a stream message failed, sent plain: ") + e.what());
    deflater_.reset();
    return nullptr;
  }
  if (frame.empty()) return nullptr;
  return std::make_shared<const std::string>(std::move(frame));
}

void StreamHub::checkFeatures() {
  if (!features_) return;
  auto v = features_->snapshot();
  if (v.version == feature_version_ && feature_sent_) return;
  feature_version_ = v.version;
  // A set() of the same value bumps the version: compare the content too.
  std::string fp = featureMessage(v.names, v.values, std::nullopt, 0);
  if (feature_sent_ && fp == feature_fingerprint_) return;
  feature_fingerprint_ = std::move(fp);
  feature_sent_ = true;
  std::optional<double> lag;
  if (v.version > 0)
    lag = std::chrono::duration<double>(std::chrono::steady_clock::now() - v.updated).count();
  server_.publishFeatures(textFrame(featureMessage(v.names, v.values, lag, unixMillis())));
}

}  // namespace bb::ws
