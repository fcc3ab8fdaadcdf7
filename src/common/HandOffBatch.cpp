#include "relay/common/HandOffBatch.hpp"

#include <utility>

namespace relay::common {

namespace {
thread_local HandOffBatch* t_open = nullptr;
}  // namespace

HandOffBatch::HandOffBatch() : outermost_(t_open == nullptr) {
  if (outermost_) t_open = this;
}

HandOffBatch::~HandOffBatch() {
  if (!outermost_) return;
  t_open = nullptr;
  for (auto& p : pending_) p.flush(p.target, std::move(p.calls));
}

bool HandOffBatch::active() {
  return t_open != nullptr;
}

bool HandOffBatch::add(void* target, Flush flush, std::function<void()>& call) {
  if (t_open == nullptr) return false;
  auto& pending = t_open->pending_;
  // Few targets (one event loop, as a rule): a linear search is the cheapest lookup.
  for (auto& p : pending) {
    if (p.target == target && p.flush == flush) {
      p.calls.push_back(std::move(call));
      return true;
    }
  }
  pending.push_back(Pending{target, flush, {}});
  pending.back().calls.push_back(std::move(call));
  return true;
}

}  // namespace relay::common
