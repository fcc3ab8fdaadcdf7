#include "ReadyQueue.hpp"

#include <algorithm>
#include <iterator>
#include <numeric>

namespace relay::dispatcher {

namespace {
// Payloads smaller than this count as this much: an event's other fields, the DueDelivery and
// its queue entry cost a few hundred bytes whatever the payload.
constexpr std::size_t kSmallestEstimate = 512;
}  // namespace

int claim_wanted(int limit, int concurrency, int used, int busy) {
  const int free = std::min(limit * kPrefetch - used, concurrency * kPrefetch - busy);
  if (free <= 0) return 0;
  // Nothing of this webhook under way: any amount is worth a claim. Otherwise wait until a
  // limit's worth is free (with kPrefetch 8, six limits' worth are still ready then).
  if (used > 0 && free < std::max(1, std::min(limit, concurrency))) return 0;
  return free;
}

void fit_claims(std::vector<std::pair<std::string, int>>& limits, std::size_t budget) {
  const auto wanted = std::accumulate(limits.begin(), limits.end(), std::size_t{0},
                                      [](std::size_t s, const auto& l) {
                                        return s + static_cast<std::size_t>(std::max(0, l.second));
                                      });
  if (wanted <= budget) return;
  for (auto& [webhook, n] : limits) {
    const auto share = static_cast<std::size_t>(std::max(0, n)) * budget / wanted;
    n = static_cast<int>(std::max<std::size_t>(1, share));
  }
}

void ReadyQueue::add(std::vector<store::DueDelivery> claimed) {
  if (claimed.empty()) return;
  std::size_t largest = 0;
  for (auto& d : claimed) {
    largest = std::max(largest, d.payload.size());
    bytes_ += d.payload.size();
    ++count_;
    by_webhook_[d.webhook_id].push_back(std::move(d));
  }
  payload_estimate_ = std::max({largest, payload_estimate_ / 2, kSmallestEstimate});
}

void ReadyQueue::forget(const store::DueDelivery& d) {
  --count_;
  bytes_ -= std::min(bytes_, d.payload.size());
}

store::DueDelivery ReadyQueue::pop(Queue& queue) {
  auto d = std::move(queue.front());
  queue.pop_front();
  forget(d);
  return d;
}

std::vector<store::DueDelivery> ReadyQueue::take(const std::string& webhook_id) {
  const auto it = by_webhook_.find(webhook_id);
  if (it == by_webhook_.end()) return {};
  std::vector<store::DueDelivery> out(std::make_move_iterator(it->second.begin()),
                                      std::make_move_iterator(it->second.end()));
  by_webhook_.erase(it);
  for (const auto& d : out) forget(d);
  return out;
}

void ReadyQueue::clear() {
  by_webhook_.clear();
  count_ = 0;
  bytes_ = 0;
}

std::size_t ReadyQueue::claim_budget() const {
  const std::size_t room = bytes_ >= kReadyBytes ? 0 : (kReadyBytes - bytes_) / payload_estimate_;
  return count_ == 0 ? std::max<std::size_t>(room, 1) : room;
}

}  // namespace relay::dispatcher
