#include "ws/client_queue.h"

#include <algorithm>

namespace bb::ws {

void ClientQueue::pushLatest(int stream, FramePtr update, FramePtr snapshot) {
  // At most one pending item per stream, and streams are few: a linear scan is cheapest.
  for (auto& item : items_) {
    if (item.stream != stream) continue;
    ++dropped_;
    if (item.snapshot && snapshot)
      item.frame = std::move(snapshot);
    else {
      item.frame = std::move(update);
      item.snapshot = false;
    }
    return;
  }
  items_.push_back(Item{stream, false, std::move(update)});
}

void ClientQueue::pushSnapshot(int stream, FramePtr snapshot) {
  for (auto& item : items_) {
    if (item.stream != stream) continue;
    ++dropped_;
    item.frame = std::move(snapshot);
    item.snapshot = true;
    return;
  }
  items_.push_back(Item{stream, true, std::move(snapshot)});
}

bool ClientQueue::pushControl(FramePtr frame) {
  if (control_count_ >= max_control_) {
    ++dropped_;
    return false;
  }
  ++control_count_;
  items_.push_back(Item{-1, false, std::move(frame)});
  return true;
}

void ClientQueue::removeStream(int stream) {
  items_.erase(std::remove_if(items_.begin(), items_.end(),
                              [stream](const Item& i) { return i.stream == stream; }),
               items_.end());
}

bool ClientQueue::hasStream(int stream) const {
  for (const auto& item : items_)
    if (item.stream == stream) return true;
  return false;
}

FramePtr ClientQueue::pop() {
  if (items_.empty()) return nullptr;
  Item item = std::move(items_.front());
  items_.pop_front();
  if (item.stream < 0) --control_count_;
  return std::move(item.frame);
}

uint64_t ClientQueue::takeDropped() {
  uint64_t n = dropped_;
  dropped_ = 0;
  return n;
}

}  // namespace bb::ws
