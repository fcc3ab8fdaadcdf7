#include "relay/common/Ids.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace relay::common {
namespace {

TEST(Ids, UlidShapeAndPrefixes) {
  const auto u = new_ulid();
  ASSERT_EQ(u.size(), 26U);
  EXPECT_EQ(u.find_first_not_of("0123456789ABCDEFGHJKMNPQRSTVWXYZ"), std::string::npos);
  EXPECT_EQ(new_event_id().rfind("evt_", 0), 0U);
  EXPECT_EQ(new_delivery_id().rfind("dlv_", 0), 0U);
}

TEST(Ids, StrictlyIncreasingWithinProcess) {
  std::string prev = new_ulid();
  for (int i = 0; i < 100000; ++i) {
    auto next = new_ulid();
    ASSERT_LT(prev, next);
    prev = std::move(next);
  }
}

TEST(Ids, UniqueAcrossThreads) {
  std::vector<std::vector<std::string>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& out : per_thread) {
    threads.emplace_back([&out] {
      for (int i = 0; i < 20000; ++i) out.push_back(new_ulid());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& v : per_thread) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 80000U);
}

}  // namespace
}  // namespace relay::common
