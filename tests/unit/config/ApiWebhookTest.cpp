// One webhook from the API goes through the file's rules, named by field path.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "relay/config/ConfigLoader.hpp"

namespace relay::config {
namespace {

std::vector<std::string> problems(const std::string& json) {
  try {
    parse_api_webhook(json);
  } catch (const ConfigError& e) {
    std::vector<std::string> out;
    for (const auto& p : e.problems()) out.push_back(p.message);
    return out;
  }
  return {};
}

TEST(ApiWebhook, AValidObjectIsAWebhookManagedByTheApi) {
  const auto w = parse_api_webhook(
      R"({"id":"wh_1","url":"https://a.example/h","secret":"s","events":["ticket.created"],)"
      R"("enabled":false,"max_queued":5,"headers":{"X-Team":"support"}})");
  EXPECT_EQ(w.id, "wh_1");
  EXPECT_TRUE(w.managed_by_api);
  EXPECT_FALSE(w.enabled);
  EXPECT_EQ(w.max_queued, 5U);
  ASSERT_EQ(w.headers.size(), 1U);
  EXPECT_EQ(w.headers[0].second, "support");
}

TEST(ApiWebhook, ProblemsNameTheFieldInsideTheObject) {
  EXPECT_EQ(problems(R"({"id":"a","url":"https://a.example/h","secret":"s",)"
                     R"("events":["ticket.created","message.*","ticket.creatd"]})"),
            std::vector<std::string>{"events[2]: unknown event type 'ticket.creatd' (did you mean "
                                     "'ticket.created'?)"});
  EXPECT_EQ(problems(R"({"id":"A b","url":"https://a.example/h","secret":"s","events":["*"]})"),
            std::vector<std::string>{
                "id: invalid id 'A b' (use 1-64 characters from a-z, 0-9, _ and -)"});
  EXPECT_EQ(problems(R"({"id":"a","secret":"s","events":["*"]})"),
            std::vector<std::string>{"missing required key 'url'"});
  EXPECT_EQ(problems(R"({"id":"a","url":"https://a.example/h","events":["*"]})"),
            std::vector<std::string>{"missing required key 'secret'"});
  EXPECT_EQ(problems(R"({"id":"a","url":"https://a.example/h","secret":"s","events":["*"],)"
                     R"("signature":"standard"})")
                .size(),
            1U);
}

TEST(ApiWebhook, NothingIsExpandedFromTheEnvironment) {
  const auto w = parse_api_webhook(
      R"({"id":"a","url":"https://a.example/h","secret":"${HOME}","events":["*"]})");
  EXPECT_EQ(w.secret, "${HOME}");
}

}  // namespace
}  // namespace relay::config
