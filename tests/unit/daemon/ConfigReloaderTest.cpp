#include "relay/daemon/ConfigReloader.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "TempDir.hpp"
#include "relay/config/ConfigLoader.hpp"
#include "relay/store/Store.hpp"

namespace relay::daemon {
namespace {

namespace fs = std::filesystem;

// Records what reconciling asked for; every write succeeds at once.
class FakeMaintenance : public store::MaintenanceStore {
 public:
  std::size_t recover_interrupted(common::TimePoint) override { return 0; }
  void set_webhook_paused(std::string webhook_id, bool paused, std::size_t, WriteCallback done,
                          std::function<void()> resumed_some) override {
    {
      std::lock_guard lock(mutex);
      calls.push_back((paused ? "pause " : "resume ") + webhook_id);
    }
    if (!paused && resumed_some) resumed_some();
    done(store::WriteStatus::kOk);
  }
  void cancel_webhooks_except(std::vector<std::string> known_ids,
                              std::function<void(store::WriteStatus, std::size_t)> done) override {
    {
      std::lock_guard lock(mutex);
      std::string all;
      for (const auto& id : known_ids) all += " " + id;
      calls.push_back("cancel all but" + all);
    }
    done(store::WriteStatus::kOk, 0);
  }
  void prune_before(common::TimePoint, std::size_t,
                    std::function<void(store::WriteStatus, std::size_t)> done) override {
    done(store::WriteStatus::kOk, 0);
  }
  [[nodiscard]] store::StoreStats stats() const override { return {}; }
  void close() override {}

  std::mutex mutex;
  std::vector<std::string> calls;
};

class ConfigReloaderTest : public ::testing::Test {
 protected:
  ConfigReloaderTest() : path_(dir_.file("relayd.yaml").string()) {}

  void write(const std::string& listen, const std::string& webhooks) {
    std::ofstream(path_) << "server:\n  listen: " << listen << "\n"
                         << "storage:\n  path: " << dir_.file("relayd.db").string() << "\n"
                         << "logging:\n  level: warn\n"
                         << "webhooks:\n"
                         << webhooks;
  }

  static std::string webhook(const std::string& id, bool enabled) {
    return "  - id: " + id + "\n    url: https://" + id + ".example.com/hook\n    secret: s3cret-" +
           id + "\n    events: [\"*\"]\n" + (enabled ? "" : "    enabled: false\n");
  }

  relay::test::TempDir dir_;
  std::string path_;
  FakeMaintenance store_;
};

TEST_F(ConfigReloaderTest, AGoodFileIsAppliedAndReconciled) {
  write("127.0.0.1:8686", webhook("crm", true));
  std::atomic<int> due{0};
  ConfigReloader reloader(path_, config::load_config_file(path_), store_, [&] { ++due; });
  EXPECT_EQ(reloader.current()->webhooks.size(), 1U);

  write("127.0.0.1:8686", webhook("crm", true) + webhook("erp", false));
  const auto outcome = reloader.reload();
  EXPECT_TRUE(outcome.applied);
  EXPECT_TRUE(outcome.problems.empty());
  EXPECT_TRUE(outcome.warnings.empty());
  EXPECT_EQ(outcome.webhooks, 2U);
  EXPECT_EQ(reloader.current()->webhooks.size(), 2U);
  EXPECT_EQ(reloader.source()()->webhooks.size(), 2U);
  std::lock_guard lock(store_.mutex);
  EXPECT_EQ(store_.calls,
            (std::vector<std::string>{"cancel all but crm erp", "resume crm", "pause erp"}));
  EXPECT_GE(due.load(), 1);  // resumed deliveries wake the dispatcher
}

// A disable made at run time (SPEC §10) lies over every file read: the webhook is paused like
// `enabled: false`, a reload keeps it so, and clearing it resumes the webhook.
TEST_F(ConfigReloaderTest, RuntimeDisablesOutliveReloadsUntilCleared) {
  write("127.0.0.1:8686", webhook("crm", true) + webhook("erp", true));
  ConfigReloader reloader(path_, config::load_config_file(path_), store_, [] {});
  reloader.restore_disabled(
      {{"erp", {"the endpoint answered 410 Gone", "2026-01-01T00:00:00.000Z"}}});
  const auto* erp = reloader.current()->find_webhook("erp");
  ASSERT_NE(erp, nullptr);
  EXPECT_FALSE(erp->enabled);
  EXPECT_EQ(erp->disabled_reason, "the endpoint answered 410 Gone");
  EXPECT_TRUE(reloader.current()->find_webhook("crm")->enabled);

  reloader.set_disabled("crm", ConfigReloader::RuntimeDisable{"disabled by an operator", "t"});
  EXPECT_FALSE(reloader.current()->find_webhook("crm")->enabled);
  ASSERT_TRUE(reloader.reload().applied);
  EXPECT_FALSE(reloader.current()->find_webhook("crm")->enabled);
  EXPECT_FALSE(reloader.current()->find_webhook("erp")->enabled);
  {
    std::lock_guard lock(store_.mutex);
    EXPECT_EQ(store_.calls, (std::vector<std::string>{"pause crm", "cancel all but crm erp",
                                                      "pause crm", "pause erp"}));
    store_.calls.clear();
  }
  reloader.set_disabled("erp", std::nullopt);
  EXPECT_TRUE(reloader.current()->find_webhook("erp")->enabled);
  EXPECT_FALSE(reloader.current()->find_webhook("erp")->disabled_reason);
  std::lock_guard lock(store_.mutex);
  EXPECT_EQ(store_.calls, (std::vector<std::string>{"resume erp"}));
}

TEST_F(ConfigReloaderTest, ABrokenFileIsRejectedWithItsProblemsAndTheOldConfigStays) {
  write("127.0.0.1:8686", webhook("crm", true));
  ConfigReloader reloader(path_, config::load_config_file(path_), store_, [] {});
  const auto before = reloader.current();
  std::ofstream(path_) << "server:\n  listen: [broken\n";
  const auto outcome = reloader.reload();
  EXPECT_FALSE(outcome.applied);
  ASSERT_FALSE(outcome.problems.empty());
  EXPECT_NE(outcome.problems[0].find(path_), std::string::npos) << outcome.problems[0];
  EXPECT_EQ(outcome.webhooks, 1U);
  EXPECT_EQ(reloader.current(), before);
  std::lock_guard lock(store_.mutex);
  EXPECT_TRUE(store_.calls.empty());
}

TEST_F(ConfigReloaderTest, ChangesThatNeedARestartAreAppliedWithAWarning) {
  write("127.0.0.1:8686", webhook("crm", true));
  ConfigReloader reloader(path_, config::load_config_file(path_), store_, [] {});
  write("127.0.0.1:9797", webhook("crm", true));
  const auto outcome = reloader.reload();
  EXPECT_TRUE(outcome.applied);
  ASSERT_EQ(outcome.warnings.size(), 1U);
  // Only the key that changed is named (it used to list all five).
  EXPECT_EQ(outcome.warnings[0],
            "server.listen takes effect only after a restart (the previous value stays in use)");
  EXPECT_EQ(reloader.current()->server.listen, "127.0.0.1:9797");
}

TEST_F(ConfigReloaderTest, APreviewReadsTheFileAndChangesNothing) {
  write("127.0.0.1:8686", webhook("crm", true));
  ConfigReloader reloader(path_, config::load_config_file(path_), store_, [] {});
  const auto before = reloader.current();
  write("127.0.0.1:9797", webhook("erp", false));
  const auto preview = reloader.preview();
  EXPECT_TRUE(preview.problems.empty());
  ASSERT_TRUE(preview.next);
  EXPECT_EQ(preview.current, before);
  EXPECT_EQ(preview.next->webhooks.at(0).id, "erp");
  ASSERT_EQ(preview.warnings.size(), 1U);
  EXPECT_EQ(preview.warnings[0].rfind("server.listen takes effect", 0), 0U);
  EXPECT_EQ(reloader.current(), before);
  std::lock_guard lock(store_.mutex);
  EXPECT_TRUE(store_.calls.empty());
}

TEST_F(ConfigReloaderTest, APreviewOfABrokenFileListsItsProblems) {
  write("127.0.0.1:8686", webhook("crm", true));
  ConfigReloader reloader(path_, config::load_config_file(path_), store_, [] {});
  std::ofstream(path_) << "storage:\n  retension: 30d\n";
  const auto preview = reloader.preview();
  ASSERT_EQ(preview.problems.size(), 1U);
  EXPECT_NE(preview.problems[0].find("did you mean 'retention'"), std::string::npos);
  EXPECT_FALSE(preview.next);
}

}  // namespace
}  // namespace relay::daemon
