#include "relay/config/CheckConfig.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <sstream>
#include <string>

#include "ConfigTestSupport.hpp"

namespace relay::config {
namespace {

using testing_support::fake_env;
using testing_support::TempDir;

TEST(CheckConfig, WarnsAboutSecretFilesOthersCanReadOrChange) {
  TempDir dir;
  const auto token = dir.write("token", "tok-very-private\n");
  const auto secret = dir.write("crm.secret", "file-secret-value\n");
  ::chmod(token.c_str(), 0604);
  ::chmod(secret.c_str(), 0660);
  const auto path = dir.write("relayd.yaml", "server:\n  token_file: " + token +
                                                 "\nwebhooks:\n  - id: crm\n"
                                                 "    url: https://crm.example.com/h\n"
                                                 "    secret_file: " +
                                                 secret + "\n    events: ['*']\n");
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(run_check_config(path, out, err, fake_env({})), 0);
  const auto text = err.str();
  EXPECT_NE(text.find("warning: server.token_file: '" + token +
                      "' has mode 0604: every user on this host can read this secret"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("warning: webhooks.crm.secret_file: '" + secret +
                      "' has mode 0660: users other than its owner can change this secret"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("tok-very-private"), std::string::npos);
  EXPECT_EQ(text.find("file-secret-value"), std::string::npos);
}

TEST(CheckConfig, PrintsASummaryWithoutSecretsAndReturnsZero) {
  TempDir dir;
  const auto token = dir.write("token", "tok-very-private\n");
  const auto secret = dir.write("billing.secret", "file-secret-value\n");
  // Private, as they should be: a readable secret file is a warning on err (tested below).
  ::chmod(token.c_str(), 0600);
  ::chmod(secret.c_str(), 0640);
  const auto path = dir.write("relayd.yaml",
                              "server:\n"
                              "  listen: 127.0.0.1:9999\n"
                              "  token_file: " +
                                  token +
                                  "\n"
                                  "storage: {path: /srv/relay.db, retention: 7d}\n"
                                  "webhooks:\n"
                                  "  - id: crm\n"
                                  "    url: https://crm.example.com/hooks/relay\n"
                                  "    secret: ${CRM_SECRET}\n"
                                  "    events: [ticket.created, \"message.*\"]\n"
                                  "    headers: {Authorization: Bearer hdr-private}\n"
                                  "  - id: billing\n"
                                  "    url: https://billing.example.com/in\n"
                                  "    secret_file: " +
                                  secret +
                                  "\n"
                                  "    events: ['*']\n"
                                  "    enabled: false\n");
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(run_check_config(path, out, err, fake_env({{"CRM_SECRET", "env-secret-value"}})), 0);
  EXPECT_EQ(err.str(), "");
  const std::string text = out.str();
  EXPECT_EQ(text.rfind(path + ": OK\n", 0), 0U) << text;
  for (const char* expected :
       {"  listen: 127.0.0.1:9999\n", "  auth: bearer token from ", "  path: /srv/relay.db\n",
        "  retention: 7d\n", "  concurrency: 64\n", "  timeout: 30s\n",
        "  retry_schedule: [0s, 1m, 5m, 30m, 2h, 8h] (6 attempts)\n",
        "  allow_private_networks: false\n",
        "  circuit_breaker: failures 10, cooldown 30s, max_cooldown 10m\n",
        "  auto_disable_after: 5d\n", "shutdown_grace: 10s\n", "logging: level info, format text\n",
        "webhooks: 2\n",
        "  - crm: https://crm.example.com/hooks/relay events=[ticket.created, message.*] "
        "enabled=true\n",
        "  - billing: https://billing.example.com/in events=[*] enabled=false\n"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << "missing: " << expected << "\n" << text;
  }
  for (const char* secret_text :
       {"tok-very-private", "file-secret-value", "env-secret-value", "hdr-private"}) {
    EXPECT_EQ(text.find(secret_text), std::string::npos) << secret_text;
  }
}

TEST(CheckConfig, SummaryShowsTheSignatureSchemeAndTheRotationWindowButNoSecret) {
  TempDir dir;
  const auto path = dir.write("rot.yaml",
                              "webhooks:\n"
                              "  - id: crm\n"
                              "    url: https://crm.example.com/hooks\n"
                              "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
                              "    signature: both\n"
                              "    previous_secrets:\n"
                              "      - {secret: whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA, expires: "
                              "2099-01-01T00:00:00Z}\n"
                              "      - {secret: whsec_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB, expires: "
                              "2001-01-01T00:00:00Z}\n"
                              "    events: ['*']\n");
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(run_check_config(path, out, err, fake_env()), 0) << err.str();
  const auto text = out.str();
  EXPECT_NE(text.find("enabled=true signature=both previous_secret_until=2099-01-01T00:00:00Z "
                      "previous_secret_until=2001-01-01T00:00:00Z(expired)\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("whsec_"), std::string::npos) << text;
}

TEST(CheckConfig, ExampleFilePasses) {
  std::ostringstream out;
  std::ostringstream err;
  const std::string path = std::string(RELAY_SOURCE_DIR) + "/config/relayd.example.yaml";
  EXPECT_EQ(run_check_config(path, out, err, fake_env()), 0) << err.str();
  EXPECT_EQ(out.str().find("change-me-example-secret"), std::string::npos);
}

TEST(CheckConfig, ReportsEveryProblemOnItsOwnLineAndReturnsOne) {
  TempDir dir;
  const auto path = dir.write("bad.yaml",
                              "storage:\n"
                              "  retension: 30d\n"
                              "webhooks:\n"
                              "  - id: crm\n"
                              "    url: https://crm.example.com/\n"
                              "    secret: ${RELAY_CRM_SECRET}\n"
                              "    events: [ticket.creatd]\n");
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(run_check_config(path, out, err, fake_env()), 1);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(),
            path + ":2:3: unknown key 'retension' in storage (did you mean 'retention'?)\n" + path +
                ":6:13: webhooks[crm].secret: environment variable RELAY_CRM_SECRET is not set\n" +
                path +
                ":7:14: webhooks[crm].events[0]: unknown event type 'ticket.creatd' (did you mean "
                "'ticket.created'?)\n");
}

TEST(CheckConfig, MissingFileIsOneLine) {
  TempDir dir;
  const auto path = dir.file("missing.yaml").string();
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(run_check_config(path, out, err, fake_env()), 1);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(), path + ": cannot read config file: No such file or directory\n");
  std::ostringstream err2;
  EXPECT_EQ(run_check_config(dir.path().string(), out, err2, fake_env()), 1);
  EXPECT_EQ(err2.str(), dir.path().string() + ": cannot read config file: Is a directory\n");
}

}  // namespace
}  // namespace relay::config
