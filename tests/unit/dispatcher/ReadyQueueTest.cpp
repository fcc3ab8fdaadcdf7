// How far ahead the dispatcher claims (src/dispatcher/ReadyQueue.hpp).
#include "ReadyQueue.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace relay::dispatcher {
namespace {

std::vector<store::DueDelivery> claimed(const std::string& webhook, int n, std::size_t bytes) {
  std::vector<store::DueDelivery> out;
  for (int i = 0; i < n; ++i) {
    store::DueDelivery d;
    d.webhook_id = webhook;
    d.delivery_id = webhook + "-" + std::to_string(i);
    d.payload.assign(bytes, 'x');
    out.push_back(std::move(d));
  }
  return out;
}

// A webhook with nothing under way gets whatever is free; one with work under way waits until
// a whole limit's worth is free, so that claims come in batches instead of one per finished
// attempt (each claim waits for the writer, and only one is under way at a time).
TEST(ReadyQueue, ClaimsComeInBatchesOfAtLeastOneLimit) {
  // per_webhook_concurrency 64, concurrency 128: windows of 64 and 128 × kPrefetch.
  const int w = 64 * kPrefetch;
  const int g = 128 * kPrefetch;
  EXPECT_EQ(claim_wanted(64, 128, 0, 0), w);
  EXPECT_EQ(claim_wanted(64, 128, 0, g - 12), 12) << "the global window bounds it";
  EXPECT_EQ(claim_wanted(64, 128, w - 1, w - 1), 0) << "one free slot is not worth a claim";
  EXPECT_EQ(claim_wanted(64, 128, w - 63, w - 63), 0);
  EXPECT_EQ(claim_wanted(64, 128, w - 64, w - 64), 64);
  EXPECT_EQ(claim_wanted(64, 128, w, w), 0);
  EXPECT_EQ(claim_wanted(64, 128, 100, g - 2), 0) << "global window nearly full";
  // The batch is one limit or the global concurrency, whichever is smaller.
  EXPECT_EQ(claim_wanted(8, 2, 2 * kPrefetch - 3, 2 * kPrefetch - 3), 3);
  EXPECT_EQ(claim_wanted(8, 2, 2 * kPrefetch - 1, 2 * kPrefetch - 1), 0);
  EXPECT_EQ(claim_wanted(1, 64, kPrefetch - 1, kPrefetch - 1), 1);
  EXPECT_EQ(claim_wanted(1, 64, kPrefetch, kPrefetch), 0);
}

TEST(ReadyQueue, ABudgetIsSharedInProportionAndNobodyStarves) {
  std::vector<std::pair<std::string, int>> limits = {{"a", 300}, {"b", 100}, {"c", 1}};
  auto same = limits;
  fit_claims(same, 1000);
  EXPECT_EQ(same, limits) << "within the budget nothing changes";
  fit_claims(limits, 100);
  EXPECT_EQ(limits[0].second, 74);
  EXPECT_EQ(limits[1].second, 24);
  EXPECT_EQ(limits[2].second, 1) << "every webhook keeps one";
  std::vector<std::pair<std::string, int>> none = {{"a", 10}, {"b", 10}};
  fit_claims(none, 0);
  EXPECT_EQ(none[0].second, 1);
  EXPECT_EQ(none[1].second, 1);
}

TEST(ReadyQueue, CountsAndBytesFollowWhatIsAddedAndTaken) {
  ReadyQueue q;
  q.add(claimed("a", 3, 1000));
  q.add(claimed("b", 2, 500));
  EXPECT_EQ(q.count(), 5U);
  EXPECT_EQ(q.bytes(), 4000U);
  auto first = q.pop(q.by_webhook().at("a"));
  EXPECT_EQ(first.delivery_id, "a-0") << "oldest first";
  EXPECT_EQ(q.count(), 4U);
  EXPECT_EQ(q.bytes(), 3000U);
  const auto b = q.take("b");
  EXPECT_EQ(b.size(), 2U);
  EXPECT_EQ(q.by_webhook().count("b"), 0U);
  EXPECT_EQ(q.count(), 2U);
  EXPECT_EQ(q.bytes(), 2000U);
  EXPECT_TRUE(q.take("nobody").empty());
  q.clear();
  EXPECT_EQ(q.count(), 0U);
  EXPECT_EQ(q.bytes(), 0U);
}

// The payloads waiting stay near kReadyBytes whatever their size: many small events may be
// claimed ahead, few large ones; the estimate comes back down once the large ones are gone.
TEST(ReadyQueue, TheClaimBudgetKeepsWaitingPayloadsNearTheByteLimit) {
  ReadyQueue q;
  EXPECT_GE(q.claim_budget(), 1U);
  EXPECT_LE(q.claim_budget(), kReadyBytes / (1 << 20)) << "cautious before any claim";

  for (int i = 0; i < 3; ++i) {  // the estimate settles on the size claimed
    q.add(claimed("a", 1, 256 << 10));
    q.pop(q.by_webhook().at("a"));
  }
  EXPECT_EQ(q.claim_budget(), kReadyBytes / (256 << 10));
  q.add(claimed("a", 1, 256 << 10));
  const auto budget = q.claim_budget();
  EXPECT_EQ(budget, (kReadyBytes - (256 << 10)) / (256 << 10));
  q.add(claimed("a", static_cast<int>(budget), 256 << 10));
  EXPECT_LE(q.bytes(), kReadyBytes);
  EXPECT_EQ(q.claim_budget(), 0U) << "full: no claim until some start";

  while (q.count() > 0) q.pop(q.by_webhook().at("a"));
  EXPECT_GE(q.claim_budget(), 1U) << "nothing ready: a claim is always allowed";
  for (int i = 0; i < 16; ++i) {
    q.add(claimed("a", 1, 1000));
    q.pop(q.by_webhook().at("a"));
  }
  EXPECT_EQ(q.claim_budget(), kReadyBytes / 1000) << "small events again";
}

}  // namespace
}  // namespace relay::dispatcher
