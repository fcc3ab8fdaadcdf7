// Running on a real host (SPEC §1, §13): file modes whatever the umask, warnings about secret
// files others can read, `relayd reload` with the daemon's verdict, admin commands that need
// only the address and token, gen-secret, journal priority prefixes — against the real daemon.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <regex>
#include <set>
#include <string>

#include <csignal>
#include "DaemonProcess.hpp"
#include "HttpTestClient.hpp"
#include "TestConfig.hpp"

namespace relay::testing {
namespace {

namespace fs = std::filesystem;

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 01000000;  // "missing": never equal to a mode
  return st.st_mode & 07777;
}

// Restores the test process's umask however the test ends.
class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t m) : old_(::umask(m)) {}
  ~UmaskGuard() { ::umask(old_); }
  UmaskGuard(const UmaskGuard&) = delete;
  UmaskGuard& operator=(const UmaskGuard&) = delete;

 private:
  mode_t old_;
};

class HostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.port = free_port();
    cfg_.db = dir_.path() / "relayd.db";
  }

  void start(std::vector<std::pair<std::string, std::string>> env = {}) {
    daemon_ = std::make_unique<DaemonProcess>(dir_.path(), cfg_.yaml());
    daemon_->start(cfg_.port, std::move(env));
  }

  std::string cli(const std::string& args) {
    auto [code, out] = run_command(relayd_binary() + " " + args + " 2>&1");
    last_code_ = code;
    return out;
  }

  TempDir dir_;
  TestConfig cfg_;
  std::unique_ptr<DaemonProcess> daemon_;
  int last_code_ = -1;
};

// The attack of issue #13 item 5: started under umask 022, the database files used to be 0644
// (every local user could read every payload); a 0644 token file was loaded without a word.
TEST_F(HostTest, DatabaseFilesArePrivateUnderUmask022AndReadableTokenIsAWarning) {
  UmaskGuard umask(022);
  write_file(dir_.path() / "token", "s3cr3t-token\n");
  ::chmod((dir_.path() / "token").c_str(), 0644);
  cfg_.server_extra = "  token_file: " + (dir_.path() / "token").string() + "\n";
  start();
  HttpTestClient client("127.0.0.1", cfg_.port);
  const auto r = client.post_json("/v1/events", R"({"event":"ticket.created","data":{}})",
                                  {{"Authorization", "Bearer s3cr3t-token"}});
  ASSERT_EQ(r.status, 202) << r.body;
  for (const auto* suffix : {"", "-wal", "-shm"}) {
    const auto path = fs::path(cfg_.db.string() + suffix);
    EXPECT_EQ(mode_of(path), 0600U) << path;
  }
  const auto log = daemon_->log();
  EXPECT_NE(log.find("warn"), std::string::npos) << log;
  EXPECT_NE(log.find("server.token_file: '" + (dir_.path() / "token").string() + "' has mode 0644"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("s3cr3t-token"), std::string::npos) << "the token leaked into the log";

  // check-config says the same (and still passes: it is a warning).
  const auto out = cli("check-config " + daemon_->config_path().string());
  EXPECT_EQ(last_code_, 0) << out;
  EXPECT_NE(out.find("warning: server.token_file"), std::string::npos) << out;

  // 0640 is the packaged layout (root:relayd): no warning.
  ::chmod((dir_.path() / "token").c_str(), 0640);
  const auto quiet = cli("check-config " + daemon_->config_path().string());
  EXPECT_EQ(last_code_, 0) << quiet;
  EXPECT_EQ(quiet.find("warning"), std::string::npos) << quiet;
}

TEST_F(HostTest, ExistingDatabaseFilesAreMadePrivateAtStart) {
  {
    UmaskGuard umask(022);
    start();
  }
  daemon_->signal(SIGTERM);
  ASSERT_EQ(daemon_->wait(std::chrono::seconds(20)), 0);
  ::chmod(cfg_.db.c_str(), 0644);
  ASSERT_EQ(mode_of(cfg_.db), 0644U);
  start();
  EXPECT_EQ(mode_of(cfg_.db), 0600U);
}

TEST_F(HostTest, ReloadCommandReportsTheDaemonsVerdict) {
  write_file(dir_.path() / "token", "tok-1\n");
  ::chmod((dir_.path() / "token").c_str(), 0600);
  cfg_.server_extra = "  token_file: " + (dir_.path() / "token").string() + "\n";
  start();
  const auto config = daemon_->config_path().string();

  // A good file: applied, exit 0, only after the new config is in effect.
  cfg_.webhooks_yaml =
      "  - id: crm\n    url: https://crm.example.com/h\n    secret: s\n    events: [\"*\"]\n";
  daemon_->rewrite_config(cfg_.yaml());
  auto out = cli("reload --config " + config);
  EXPECT_EQ(last_code_, 0) << out;
  EXPECT_NE(out.find("applied (1 webhooks)"), std::string::npos) << out;
  HttpTestClient client("127.0.0.1", cfg_.port);
  auto r = client.request("GET", "/v1/webhooks", "", {{"Authorization", "Bearer tok-1"}});
  EXPECT_NE(r.body.find("\"crm\""), std::string::npos) << r.body;

  // A bad file: exit 1 with the daemon's reason (PATH:LINE:COL), and the old config stays.
  daemon_->rewrite_config(cfg_.yaml() + "bogus_key: 1\n");
  out = cli("reload --config " + config);
  EXPECT_EQ(last_code_, 1) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(":[0-9]+:[0-9]+: .*bogus_key"))) << out;
  EXPECT_NE(out.find("previous configuration stays in effect"), std::string::npos) << out;
  r = client.request("GET", "/v1/webhooks", "", {{"Authorization", "Bearer tok-1"}});
  EXPECT_NE(r.body.find("\"crm\""), std::string::npos) << r.body;

  // The endpoint is a /v1 route: no token, no reload.
  r = client.request("POST", "/v1/reload", "{}");
  EXPECT_EQ(r.status, 401);

  // A changed token file: the daemon refuses the new token until it reloads. Without --pid
  // that is a clear failure; with --pid (the unit's $MAINPID) SIGHUP applies it.
  daemon_->rewrite_config(cfg_.yaml());
  write_file(dir_.path() / "token", "tok-rotated\n");
  out = cli("reload --config " + config);
  EXPECT_EQ(last_code_, 1) << out;
  EXPECT_NE(out.find("HTTP 401"), std::string::npos) << out;
  out = cli("reload --config " + config + " --pid " + std::to_string(daemon_->pid()));
  EXPECT_EQ(last_code_, 0) << out;
  EXPECT_NE(out.find("with the new token"), std::string::npos) << out;
  r = client.request("GET", "/v1/webhooks", "", {{"Authorization", "Bearer tok-rotated"}});
  EXPECT_EQ(r.status, 200) << r.body;
  r = client.request("GET", "/v1/webhooks", "", {{"Authorization", "Bearer tok-1"}});
  EXPECT_EQ(r.status, 401) << r.body;

  // A new token together with a bad file: SIGHUP is rejected, the old token stays, exit 1.
  daemon_->rewrite_config(cfg_.yaml() + "bogus_key: 1\n");
  write_file(dir_.path() / "token", "tok-never\n");
  out = cli("reload --config " + config + " --pid " + std::to_string(daemon_->pid()));
  EXPECT_EQ(last_code_, 1) << out;
  EXPECT_NE(out.find("still refuses the token"), std::string::npos) << out;
  r = client.request("GET", "/v1/webhooks", "", {{"Authorization", "Bearer tok-rotated"}});
  EXPECT_EQ(r.status, 200) << r.body;
}

// SPEC §1: the admin commands read only server.listen and server.token_file, so a webhook
// secret's variable that is set only in the service's environment does not break them.
TEST_F(HostTest, AdminCommandsNeedOnlyTheAddressAndToken) {
  write_file(dir_.path() / "token", "tok-2\n");
  ::chmod((dir_.path() / "token").c_str(), 0600);
  cfg_.server_extra = "  token_file: " + (dir_.path() / "token").string() + "\n";
  cfg_.webhooks_yaml =
      "  - id: crm\n    url: https://crm.example.com/h\n    secret: ${RELAY_HOST_TEST_SECRET}\n"
      "    events: [\"*\"]\n";
  start({{"RELAY_HOST_TEST_SECRET", "whsec_service_only"}});
  const auto config = daemon_->config_path().string();

  // The operator's shell lacks RELAY_HOST_TEST_SECRET: check-config fails as it should…
  auto out = cli("check-config " + config);
  EXPECT_EQ(last_code_, 1) << out;
  // …but the admin commands work from the same file.
  out = cli("reload --config " + config);
  EXPECT_EQ(last_code_, 0) << out;
  out = cli("redeliver dlv_missing --config " + config);
  EXPECT_EQ(last_code_, 1) << out;
  EXPECT_NE(out.find("dlv_missing"), std::string::npos) << out;
  EXPECT_EQ(out.find("RELAY_HOST_TEST_SECRET"), std::string::npos) << out;

  // --url and --token-file without any config file.
  write_file(dir_.path() / "other-token", "tok-2");
  const auto url = "--url http://127.0.0.1:" + std::to_string(cfg_.port);
  out = cli("reload --config /nonexistent/relayd.yaml " + url + " --token-file " +
            (dir_.path() / "other-token").string());
  EXPECT_EQ(last_code_, 0) << out;
  // A wrong token is the daemon's 401, reported in one line.
  write_file(dir_.path() / "wrong-token", "nope");
  out = cli("reload " + url + " --token-file " + (dir_.path() / "wrong-token").string());
  EXPECT_EQ(last_code_, 1) << out;
  EXPECT_NE(out.find("HTTP 401"), std::string::npos) << out;
  // Bad option values are usage errors (2) or one clear line (1).
  out = cli("reload --url ftp://x:1");
  EXPECT_EQ(last_code_, 1) << out;
  EXPECT_NE(out.find("http://HOST:PORT"), std::string::npos) << out;
  out = cli("check-config --url http://127.0.0.1:1 " + config);
  EXPECT_EQ(last_code_, 2) << out;
  out = cli("reload --config /nonexistent/relayd.yaml");
  EXPECT_EQ(last_code_, 1) << out;
  EXPECT_NE(out.find("/nonexistent/relayd.yaml: cannot read config file"), std::string::npos)
      << out;
}

TEST_F(HostTest, GenSecretPrintsFreshWhsecSecrets) {
  std::set<std::string> seen;
  for (int i = 0; i < 3; ++i) {
    const auto out = cli("gen-secret");
    ASSERT_EQ(last_code_, 0) << out;
    // 32 bytes → 44 base64 characters with one '=' of padding.
    EXPECT_TRUE(std::regex_match(out, std::regex("whsec_[A-Za-z0-9+/]{43}=\n"))) << out;
    seen.insert(out);
  }
  EXPECT_EQ(seen.size(), 3U);
  cli("gen-secret extra");
  EXPECT_EQ(last_code_, 2);
}

// When stderr is the journal (JOURNAL_STREAM = its dev:inode), each line carries its priority.
TEST_F(HostTest, JournalStreamGetsPriorityPrefixes) {
  const auto log = dir_.path() / "relayd.log";
  write_file(log, "");
  struct stat st {};
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  write_file(dir_.path() / "token", "tok-3\n");
  ::chmod((dir_.path() / "token").c_str(), 0644);  // a warning to look for
  cfg_.server_extra = "  token_file: " + (dir_.path() / "token").string() + "\n";
  start({{"JOURNAL_STREAM", std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)}});
  const auto text = daemon_->log();
  EXPECT_TRUE(std::regex_search(text, std::regex("(^|\n)<4>[^\n]*server.token_file"))) << text;
  EXPECT_TRUE(std::regex_search(text, std::regex("(^|\n)<6>[^\n]*ready"))) << text;

  // A JOURNAL_STREAM naming another file: plain lines.
  daemon_->signal(SIGTERM);
  ASSERT_EQ(daemon_->wait(std::chrono::seconds(20)), 0);
  fs::remove(log);
  start({{"JOURNAL_STREAM", "1:1"}});
  EXPECT_EQ(daemon_->log().find("<6>"), std::string::npos) << daemon_->log();
}

}  // namespace
}  // namespace relay::testing
