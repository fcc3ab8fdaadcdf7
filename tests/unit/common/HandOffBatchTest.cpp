#include "relay/common/HandOffBatch.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace relay::common {
namespace {

struct Target {
  std::vector<std::vector<std::string>> flushes;  // each flush's calls, run in order
  std::vector<std::string> ran;
};

void flush_into(void* target, std::vector<std::function<void()>> calls) {
  auto& t = *static_cast<Target*>(target);
  t.flushes.emplace_back();
  for (auto& call : calls) {
    call();
    t.flushes.back().push_back(t.ran.back());
  }
}

std::function<void()> record(Target& t, std::string what) {
  return [&t, what] { t.ran.push_back(what); };
}

TEST(HandOffBatch, WithoutABatchNothingIsTaken) {
  Target t;
  EXPECT_FALSE(HandOffBatch::active());
  auto call = record(t, "a");
  EXPECT_FALSE(HandOffBatch::add(&t, &flush_into, call));
  EXPECT_TRUE(call);  // left to the caller
  EXPECT_TRUE(t.flushes.empty());
}

TEST(HandOffBatch, EachTargetGetsItsCallsOnceInOrderWhenTheBatchEnds) {
  Target a;
  Target b;
  {
    HandOffBatch batch;
    EXPECT_TRUE(HandOffBatch::active());
    for (const auto* name : {"a1", "a2"}) {
      auto call = record(a, name);
      EXPECT_TRUE(HandOffBatch::add(&a, &flush_into, call));
    }
    auto other = record(b, "b1");
    EXPECT_TRUE(HandOffBatch::add(&b, &flush_into, other));
    auto last = record(a, "a3");
    EXPECT_TRUE(HandOffBatch::add(&a, &flush_into, last));
    EXPECT_TRUE(a.flushes.empty());  // nothing handed over before the end
    {
      HandOffBatch inner;  // collects into the outer batch
      auto nested = record(a, "a4");
      EXPECT_TRUE(HandOffBatch::add(&a, &flush_into, nested));
    }
    EXPECT_TRUE(a.flushes.empty());
  }
  EXPECT_FALSE(HandOffBatch::active());
  ASSERT_EQ(a.flushes.size(), 1U);
  EXPECT_EQ(a.flushes[0], (std::vector<std::string>{"a1", "a2", "a3", "a4"}));
  ASSERT_EQ(b.flushes.size(), 1U);
  EXPECT_EQ(b.flushes[0], (std::vector<std::string>{"b1"}));
}

}  // namespace
}  // namespace relay::common
