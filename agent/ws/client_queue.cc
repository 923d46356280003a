#include "ws/client_queue.h"

#include <algorithm>

namespace bb::ws {

void ClientQueue::compact() {
  // Before each push: the items already taken go, so the vector holds only what is pending
  // (a client that never empties its queue does not grow it).
  if (head_ == 0) return;
  items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
  head_ = 0;
}

void ClientQueue::pushLatest(int stream, FramePtr update, FramePtr snapshot) {
  compact();
  // Streams are few and so are pending items: a linear scan is cheapest.
  auto first = std::find_if(items_.begin(), items_.end(),
                            [stream](const Item& i) { return i.stream == stream; });
  if (first == items_.end()) {
    items_.push_back(Item{stream, false, std::move(update)});
    return;
  }
  ++dropped_;
  if (first->snapshot && snapshot) {
    first->frame = std::move(snapshot);
  } else {
    first->frame = std::move(update);
    first->snapshot = false;
  }
  // Updates queued together (pushUpdate) collapse into this one.
  auto rest = std::remove_if(first + 1, items_.end(),
                             [stream](const Item& i) { return i.stream == stream; });
  dropped_ += static_cast<uint64_t>(items_.end() - rest);
  items_.erase(rest, items_.end());
}

void ClientQueue::pushUpdate(int stream, FramePtr update, FramePtr snapshot,
                             size_t max_per_stream) {
  compact();
  Item* newest = nullptr;
  size_t pending = 0;
  for (auto& item : items_) {
    if (item.stream != stream) continue;
    if (item.snapshot) return pushLatest(stream, std::move(update), std::move(snapshot));
    newest = &item;
    ++pending;
  }
  if (newest && pending >= max_per_stream) {
    ++dropped_;
    newest->frame = std::move(update);
    return;
  }
  items_.push_back(Item{stream, false, std::move(update)});
}

void ClientQueue::pushSnapshot(int stream, FramePtr snapshot) {
  compact();
  for (size_t i = head_; i < items_.size(); ++i) {
    Item& item = items_[i];
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
  compact();
  items_.push_back(Item{-1, false, std::move(frame)});
  return true;
}

void ClientQueue::removeStream(int stream) {
  items_.erase(std::remove_if(items_.begin() + static_cast<std::ptrdiff_t>(head_), items_.end(),
                              [stream](const Item& i) { return i.stream == stream; }),
               items_.end());
  if (empty()) {
    items_.clear();
    head_ = 0;
  }
}

bool ClientQueue::hasStream(int stream) const {
  for (size_t i = head_; i < items_.size(); ++i)
    if (items_[i].stream == stream) return true;
  return false;
}

FramePtr ClientQueue::pop() {
  if (empty()) return nullptr;
  Item& item = items_[head_++];
  if (item.stream < 0) --control_count_;
  FramePtr frame = std::move(item.frame);
  if (empty()) {
    items_.clear();
    head_ = 0;
  }
  return frame;
}

uint64_t ClientQueue::takeDropped() {
  uint64_t n = dropped_;
  dropped_ = 0;
  return n;
}

}  // namespace bb::ws
