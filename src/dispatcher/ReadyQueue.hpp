#pragma once

// What the dispatcher has claimed but not started yet, and how much more it claims.
//
// A claim runs on the store's writer, behind the attempt records being committed: at full speed
// it answers after 1–3 ms, but the writer also stops now and then for ~10–15 ms (copying the
// WAL back at its cap, Checkpointer.hpp; a pause/resume chunk). The dispatcher has one claim
// under way at a time, so it claims ahead to keep every slot busy meanwhile:
//   - in flight + ready up to kPrefetch × each concurrency limit (per webhook and global): 8
//     windows of 64 are ~14 ms of work at 36k deliveries/s, enough to outlast those stops (4
//     were not: in flight fell to 0 at each; docs/performance.md, "Issue 20, round 8");
//   - in batches of at least one per-webhook limit: a claim for the one slot that just freed
//     would hold back every slot freed while it waits (the drain then ran in bursts, the slots
//     empty a third of the time; docs/performance.md, "Issue 20, round 7");
//   - at most kReadyBytes (8 MiB) of payloads waiting (estimated from the largest payloads claimed
//     lately), shared fairly among the webhooks, so that prefetching large events or many
//     webhooks does not multiply the memory.

#include <cstddef>
#include <deque>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "relay/store/Store.hpp"

namespace relay::dispatcher {

inline constexpr int kPrefetch = 8;
inline constexpr std::size_t kReadyBytes = std::size_t{8} << 20;

/// How many deliveries of one webhook the next claim asks for (0: not now). `limit` is its
/// per_webhook_concurrency, `concurrency` delivery.concurrency, `used` the webhook's deliveries
/// in flight or ready, `busy` all webhooks' together.
int claim_wanted(int limit, int concurrency, int used, int busy);

/// Scales `limits` down to `budget` deliveries in all, in proportion; every webhook keeps at
/// least one (so none starves behind the others; the budget may be exceeded by that much).
void fit_claims(std::vector<std::pair<std::string, int>>& limits, std::size_t budget);

class ReadyQueue {
 public:
  using Queue = std::deque<store::DueDelivery>;

  /// Adds what a claim returned, and learns from the sizes of its payloads.
  void add(std::vector<store::DueDelivery> claimed);
  /// Takes the oldest of `queue` (an entry of by_webhook()).
  store::DueDelivery pop(Queue& queue);
  /// Takes all of one webhook's (its circuit opened).
  std::vector<store::DueDelivery> take(const std::string& webhook_id);
  void clear();

  /// How many more deliveries the bytes budget allows to claim now (at least 1 when nothing
  /// is ready).
  [[nodiscard]] std::size_t claim_budget() const;
  [[nodiscard]] std::size_t count() const { return count_; }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }
  std::unordered_map<std::string, Queue>& by_webhook() { return by_webhook_; }

 private:
  void forget(const store::DueDelivery& d);  // its share of count() and bytes()
  std::unordered_map<std::string, Queue> by_webhook_;
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
  // The largest payload of the last claims, halved at each claim that had none as large: a
  // cautious start (before any claim: as large as the default server.max_body_bytes, so the
  // first claim of large events cannot overshoot) and a quick return to small events.
  std::size_t payload_estimate_ = std::size_t{1} << 20;
};

}  // namespace relay::dispatcher
