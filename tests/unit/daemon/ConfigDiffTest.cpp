// What a reload would change (relayd reload --dry-run), computed from two configurations and
// the store's counts; never a value, only names (issue #21).
#include "ConfigDiff.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace relay::daemon {
namespace {

config::WebhookConfig hook(const std::string& id, bool enabled = true) {
  config::WebhookConfig w;
  w.id = id;
  w.url = "https://" + id + ".example.com/hook";
  w.secret = "s3cret-" + id;
  w.events = {"*"};
  w.enabled = enabled;
  w.max_queued = 3;
  return w;
}

TEST(ConfigDiff, NamesAddedRemovedChangedAndTheKeys) {
  config::Config a;
  a.webhooks = {hook("crm"), hook("erp"), hook("old"), hook("off", false)};
  config::Config b = a;
  b.webhooks = {hook("crm"), hook("erp"), hook("new"), hook("off")};
  b.webhooks[0].secret = "rotated";
  b.webhooks[0].events = {"ticket.created"};
  b.webhooks[1].enabled = false;
  b.webhooks[2].url = a.webhooks[2].url;  // "old" renamed to "new"
  b.storage.path = "/elsewhere.db";
  b.delivery.timeout = std::chrono::seconds(3);

  const auto d = diff_configs(a, b);
  EXPECT_EQ(d.added, std::vector<std::string>{"new"});
  EXPECT_EQ(d.removed, std::vector<std::string>{"old"});
  EXPECT_EQ(d.same_url_as_removed.at("new"), "old");
  ASSERT_EQ(d.changed.size(), 3U);
  EXPECT_EQ(d.changed[0].first, "crm");
  EXPECT_EQ(d.changed[0].second, (std::vector<std::string>{"secret", "events"}));
  EXPECT_EQ(d.changed[1].second, std::vector<std::string>{"enabled"});
  EXPECT_EQ(d.disabled, std::vector<std::string>{"erp"});
  EXPECT_EQ(d.enabled, std::vector<std::string>{"off"});
  EXPECT_EQ(d.restart_required, std::vector<std::string>{"storage.path"});
  EXPECT_EQ(d.settings_changed, std::vector<std::string>{"delivery.timeout"});
  EXPECT_TRUE(diff_configs(a, a).empty());

  DeliveryCounts counts;
  counts["old"] = {{"pending", 2}, {"paused", 1}, {"delivering", 1}, {"succeeded", 9}};
  counts["erp"] = {{"pending", 5}};
  counts["off"] = {{"paused", 4}};
  const auto j = nlohmann::json::parse(preview_json(d, b, counts, {"w"}));
  EXPECT_EQ(j["status"], "dry_run");
  EXPECT_EQ(j["applied"], false);
  EXPECT_EQ(j["webhooks"]["removed"][0]["deliveries_cancelled"], 4);
  EXPECT_EQ(j["webhooks"]["added"][0]["same_url_as_removed"], "old");
  EXPECT_EQ(j["webhooks"]["disabled"][0]["id"], "erp");
  EXPECT_EQ(j["webhooks"]["disabled"][0]["deliveries_paused"], 5);
  EXPECT_EQ(j["webhooks"]["disabled"][0]["deliveries_dropped"], 2);  // max_queued 3
  EXPECT_EQ(j["webhooks"]["enabled"][0]["deliveries_resumed"], 4);
  EXPECT_EQ(j["deliveries"],
            (nlohmann::json{{"cancelled", 4}, {"paused", 5}, {"dropped", 2}, {"resumed", 4}}));
  EXPECT_EQ(j["restart_required"], nlohmann::json::array({"storage.path"}));
  // Names only: no secret ever appears.
  EXPECT_EQ(j.dump().find("s3cret"), std::string::npos);
  EXPECT_EQ(j.dump().find("rotated"), std::string::npos);
}

}  // namespace
}  // namespace relay::daemon
