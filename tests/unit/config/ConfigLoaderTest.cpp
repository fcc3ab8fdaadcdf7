#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "ConfigTestSupport.hpp"
#include "relay/common/Time.hpp"
#include "relay/config/ConfigLoader.hpp"

namespace relay::config {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using testing_support::fake_env;
using testing_support::kGoodWebhook;
using testing_support::problems;
using testing_support::TempDir;

const std::string kExample = std::string(RELAY_SOURCE_DIR) + "/config/relayd.example.yaml";

TEST(ConfigLoader, ExampleFileLoadsWithAnEmptyEnvironment) {
  const auto config = load_config_file(kExample, fake_env());
  EXPECT_EQ(config->source_path, kExample);
  EXPECT_EQ(config->server.listen, "127.0.0.1:8686");
  EXPECT_EQ(config->server.listen_host, "127.0.0.1");
  EXPECT_EQ(config->server.listen_port, 8686);
  EXPECT_FALSE(config->server.token_file.has_value());
  EXPECT_EQ(config->server.token, "");
  EXPECT_EQ(config->server.max_body_bytes, 1048576U);
  EXPECT_FALSE(config->server.tls_cert.has_value());
  EXPECT_FALSE(config->server.tls_key.has_value());
  EXPECT_EQ(config->storage.path, "./state/relayd.db");
  EXPECT_EQ(config->storage.retention, hours(24 * 30));
  EXPECT_EQ(config->delivery.concurrency, 64);
  EXPECT_EQ(config->delivery.per_webhook_concurrency, 8);
  EXPECT_EQ(config->delivery.timeout, seconds(30));
  EXPECT_EQ(
      config->delivery.retry_schedule,
      (std::vector<Duration>{seconds(0), minutes(1), minutes(5), minutes(30), hours(2), hours(8)}));
  EXPECT_EQ(config->delivery.ca_file, "/etc/ssl/certs/ca-certificates.crt");
  EXPECT_FALSE(config->delivery.allow_private_networks);
  EXPECT_EQ(config->shutdown_grace, seconds(10));
  EXPECT_EQ(config->logging.level, "info");
  EXPECT_EQ(config->logging.format, LoggingConfig::Format::kText);
  ASSERT_EQ(config->webhooks.size(), 1U);
  const auto& w = config->webhooks[0];
  EXPECT_EQ(w.id, "crm");
  EXPECT_EQ(w.url, "https://crm.example.com/hooks/relay");
  EXPECT_EQ(w.secret, "change-me-example-secret");
  EXPECT_EQ(w.events, (std::vector<std::string>{"ticket.created", "message.*"}));
  EXPECT_TRUE(w.enabled);
  EXPECT_EQ(w.max_queued, 10000U);
  EXPECT_EQ(w.headers, (std::vector<std::pair<std::string, std::string>>{{"X-Team", "support"}}));
  EXPECT_FALSE(w.allow_insecure_http);
  EXPECT_EQ(config->find_webhook("crm"), &w);
  EXPECT_EQ(config->find_webhook("nope"), nullptr);
}

TEST(ConfigLoader, ExampleFileTakesStateDirectoryAndSecretFromTheEnvironment) {
  const auto config = load_config_file(
      kExample, fake_env({{"STATE_DIRECTORY", "/var/lib/relayd"}, {"RELAY_CRM_SECRET", "real"}}));
  EXPECT_EQ(config->storage.path, "/var/lib/relayd/relayd.db");
  EXPECT_EQ(config->webhooks.at(0).secret, "real");
}

TEST(ConfigLoader, EndpointHealthSettings) {
  using namespace std::chrono_literals;
  auto config = parse_config(
      "delivery:\n  circuit_breaker: { failures: 3, cooldown: 250ms, max_cooldown: 2s }\n"
      "  auto_disable_after: 0s\nwebhooks: []\n",
      "t.yaml", fake_env());
  EXPECT_EQ(config->delivery.circuit_breaker.failures, 3);
  EXPECT_EQ(config->delivery.circuit_breaker.cooldown, 250ms);
  EXPECT_EQ(config->delivery.circuit_breaker.max_cooldown, 2s);
  EXPECT_EQ(config->delivery.auto_disable_after, 0ms);
  // Defaults (SPEC §10): 10 failures, 30 s doubling to 10 min, auto-disable after 5 days.
  config = parse_config("webhooks: []\n", "t.yaml", fake_env());
  EXPECT_EQ(config->delivery.circuit_breaker.failures, 10);
  EXPECT_EQ(config->delivery.circuit_breaker.cooldown, 30s);
  EXPECT_EQ(config->delivery.circuit_breaker.max_cooldown, 10min);
  EXPECT_EQ(config->delivery.auto_disable_after, std::chrono::hours(24 * 5));
}

TEST(ConfigLoader, OmittedKeysKeepTheirDefaults) {
  const auto config = parse_config("webhooks: []\n", "t.yaml", fake_env());
  const Config defaults;
  EXPECT_EQ(config->server.listen, defaults.server.listen);
  EXPECT_EQ(config->storage.path, "/var/lib/relayd/relayd.db");
  EXPECT_EQ(config->delivery.retry_schedule, defaults.delivery.retry_schedule);
  EXPECT_EQ(config->shutdown_grace, defaults.shutdown_grace);
  EXPECT_TRUE(config->webhooks.empty());
  // Empty sections mean "all defaults" too.
  EXPECT_NO_THROW(parse_config("server:\nstorage:\nwebhooks:\n", "t.yaml", fake_env()));
}

TEST(ConfigLoader, ReadsEveryKey) {
  TempDir dir;
  const auto cert = dir.write("cert.pem", "-----BEGIN CERTIFICATE-----\n");
  const auto key = dir.write("key.pem", "-----BEGIN PRIVATE KEY-----\n");
  const auto ca = dir.write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
  const auto token = dir.write("token", "  tok-123\n\n");
  const std::string yaml =
      "server:\n"
      "  listen: \"[::1]:0\"\n"
      "  token_file: " +
      token +
      "\n"
      "  max_body_bytes: 2048\n"
      "  tls_cert: " +
      cert +
      "\n"
      "  tls_key: " +
      key +
      "\n"
      "storage: {path: /data/x.db, retention: 12h}\n"
      "delivery:\n"
      "  concurrency: 3\n"
      "  per_webhook_concurrency: 1\n"
      "  timeout: 1500ms\n"
      "  retry_schedule: [0s, 10s]\n"
      "  ca_file: " +
      ca +
      "\n"
      "  allow_private_networks: true\n"
      "shutdown_grace: 0s\n"
      "logging: {level: debug, format: json}\n"
      "webhooks:\n"
      "  - id: local_1\n"
      "    url: HTTP://127.0.0.1:9000/in?x=1\n"
      "    allow_insecure_http: true\n"
      "    secret: abc\n"
      "    events: ['*']\n"
      "    enabled: false\n"
      "    max_queued: 5\n"
      "    headers:\n"
      "      Authorization: Bearer xyz\n"
      "      X-Num: 2\n";
  const auto config = parse_config(yaml, "t.yaml", fake_env());
  EXPECT_EQ(config->server.listen, "[::1]:0");
  EXPECT_EQ(config->server.listen_host, "::1");
  EXPECT_EQ(config->server.listen_port, 0);
  EXPECT_EQ(config->server.token_file, token);
  EXPECT_EQ(config->server.token, "tok-123");
  EXPECT_EQ(config->server.max_body_bytes, 2048U);
  EXPECT_EQ(config->server.tls_cert, cert);
  EXPECT_EQ(config->server.tls_key, key);
  EXPECT_EQ(config->storage.path, "/data/x.db");
  EXPECT_EQ(config->storage.retention, hours(12));
  EXPECT_EQ(config->delivery.concurrency, 3);
  EXPECT_EQ(config->delivery.per_webhook_concurrency, 1);
  EXPECT_EQ(config->delivery.timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(config->delivery.retry_schedule, (std::vector<Duration>{seconds(0), seconds(10)}));
  EXPECT_EQ(config->delivery.ca_file, ca);
  EXPECT_TRUE(config->delivery.allow_private_networks);
  EXPECT_EQ(config->shutdown_grace, seconds(0));
  EXPECT_EQ(config->logging.level, "debug");
  EXPECT_EQ(config->logging.format, LoggingConfig::Format::kJson);
  const auto& w = config->webhooks.at(0);
  EXPECT_EQ(w.id, "local_1");
  EXPECT_EQ(w.url, "http://127.0.0.1:9000/in?x=1");  // scheme lower-cased, rest untouched
  EXPECT_TRUE(w.allow_insecure_http);
  EXPECT_FALSE(w.enabled);
  EXPECT_EQ(w.max_queued, 5U);
  EXPECT_EQ(w.headers, (std::vector<std::pair<std::string, std::string>>{
                           {"Authorization", "Bearer xyz"}, {"X-Num", "2"}}));
}

TEST(ConfigLoader, ListenAddressForms) {
  const auto load = [](const std::string& listen) {
    return parse_config("server: {listen: \"" + listen + "\"}\n", "t.yaml", fake_env());
  };
  EXPECT_EQ(load("0.0.0.0:80")->server.listen_host, "0.0.0.0");
  EXPECT_EQ(load("localhost:65535")->server.listen_port, 65535);
  EXPECT_EQ(load("[fe80::1%eth0]:8686")->server.listen_host, "fe80::1%eth0");
  EXPECT_EQ(load("127.0.0.1:0")->server.listen_port, 0);
}

TEST(ConfigLoader, SecretFileIsReadAndLosesItsFinalNewline) {
  TempDir dir;
  const auto file = dir.write("crm.secret", "line-one secret\r\n\n");
  const auto config = parse_config(
      "webhooks:\n"
      "  - id: crm\n"
      "    url: https://crm.example.com/hooks\n"
      "    secret_file: " +
          file +
          "\n"
          "    events: [ticket.created]\n",
      "t.yaml", fake_env());
  EXPECT_EQ(config->webhooks.at(0).secret, "line-one secret");
}

TEST(ConfigLoader, SecretAndTokenFileProblems) {
  TempDir dir;
  const auto empty = dir.write("empty", "\n");
  const auto blank = dir.write("blank", " \t\n");
  const auto two_words = dir.write("two", "abc def\n");
  const auto missing = dir.file("missing").string();
  const std::string yaml =
      "server:\n"
      "  token_file: " +
      blank +
      "\n"
      "webhooks:\n"
      "  - id: a\n"
      "    url: https://a.example.com/\n"
      "    secret_file: " +
      empty +
      "\n"
      "    events: ['*']\n"
      "  - id: b\n"
      "    url: https://b.example.com/\n"
      "    secret_file: " +
      missing +
      "\n"
      "    events: ['*']\n"
      "  - id: c\n"
      "    url: https://c.example.com/\n"
      "    secret_file: " +
      dir.path().string() +
      "\n"
      "    events: ['*']\n";
  EXPECT_EQ(problems(yaml),
            (std::vector<std::string>{
                "t.yaml:2:15: server.token_file: file '" + blank + "' is empty",
                "t.yaml:6:18: webhooks[a].secret_file: file '" + empty + "' is empty",
                "t.yaml:10:18: webhooks[b].secret_file: cannot read '" + missing +
                    "': No such file or directory",
                "t.yaml:14:18: webhooks[c].secret_file: cannot read '" + dir.path().string() +
                    "': Is a directory",
            }));
  EXPECT_EQ(problems("server:\n  token_file: " + two_words + "\n"),
            (std::vector<std::string>{
                "t.yaml:2:15: server.token_file: the token in '" + two_words +
                "' must be one word (no spaces, line breaks or control characters)"}));
  EXPECT_EQ(problems("server:\n  token_file: " + missing + "\n"),
            (std::vector<std::string>{"t.yaml:2:15: server.token_file: cannot read '" + missing +
                                      "': No such file or directory"}));
}

TEST(ConfigLoader, MatchesExactGroupAndWildcardPatterns) {
  WebhookConfig w;
  w.events = {"ticket.created", "message.*"};
  EXPECT_TRUE(w.matches("ticket.created"));
  EXPECT_FALSE(w.matches("ticket.updated"));
  EXPECT_TRUE(w.matches("message.created"));
  EXPECT_TRUE(w.matches("message.customer_reply"));
  EXPECT_FALSE(w.matches("message"));
  EXPECT_FALSE(w.matches("message."));
  EXPECT_FALSE(w.matches("messages.created"));
  EXPECT_FALSE(w.matches("sla.breached"));
  EXPECT_FALSE(w.matches(""));
  w.events = {"*"};
  for (const auto& type : event_catalogue()) EXPECT_TRUE(w.matches(type)) << type;
  w.events = {};
  EXPECT_FALSE(w.matches("ticket.created"));
}

TEST(ConfigLoader, EventCatalogue) {
  EXPECT_EQ(event_catalogue().size(), 12U);
  EXPECT_TRUE(is_known_event_type("ticket.status_changed"));
  EXPECT_TRUE(is_known_event_type("sla.breached"));
  EXPECT_FALSE(is_known_event_type("ticket.*"));
  EXPECT_FALSE(is_known_event_type("Ticket.created"));
}

TEST(ConfigLoader, ProblemAndErrorFormatting) {
  ConfigProblem p{"/etc/relayd/relayd.yaml", 3, 7, "unknown key 'x' in server"};
  EXPECT_EQ(p.to_string(), "/etc/relayd/relayd.yaml:3:7: unknown key 'x' in server");
  ConfigProblem whole{"cfg.yaml", 0, 0, "cannot read config file: No such file or directory"};
  EXPECT_EQ(whole.to_string(), "cfg.yaml: cannot read config file: No such file or directory");
  const ConfigError e({p, whole});
  EXPECT_EQ(std::string(e.what()), p.to_string() + "\n" + whole.to_string());
  EXPECT_EQ(e.problems().size(), 2U);
}

TEST(ConfigLoader, MissingFileIsOneProblemWithoutPosition) {
  TempDir dir;
  const auto path = dir.file("nope.yaml").string();
  try {
    (void)load_config_file(path, fake_env());
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": cannot read config file: No such file or directory");
  }
}

TEST(ConfigLoader, GoodWebhookFixtureLoads) {
  const auto config = parse_config("webhooks:\n" + std::string(kGoodWebhook), "t.yaml", fake_env());
  EXPECT_EQ(config->webhooks.at(0).secret, "s3cr3t-value");
}

TEST(ConfigLoader, SignatureSchemesAndPreviousSecrets) {
  TempDir dir;
  const auto old_file = dir.write("old.secret", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
  const auto config = parse_config(
      "webhooks:\n"
      "  - id: std\n"
      "    url: https://a.example.com/h\n"
      "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
      "    signature: standard\n"
      "    previous_secrets:\n"
      "      - secret_file: " +
          old_file +
          "\n"
          "        expires: 2026-12-01T00:00:00Z\n"
          "    events: ['*']\n"
          "  - id: plain\n"
          "    url: https://b.example.com/h\n"
          "    secret: not-a-whsec-secret\n"
          "    events: ['*']\n",
      "t.yaml", fake_env());
  const auto& std_hook = config->webhooks.at(0);
  EXPECT_EQ(std_hook.signature, SignatureScheme::kStandard);
  EXPECT_EQ(std_hook.signing_key.size(), 24u);
  ASSERT_EQ(std_hook.previous_secrets.size(), 1u);
  EXPECT_EQ(std_hook.previous_secrets[0].secret, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  EXPECT_EQ(std_hook.previous_secrets[0].key, std::string(24, '\0'));
  EXPECT_EQ(common::format_rfc3339_s(std_hook.previous_secrets[0].expires), "2026-12-01T00:00:00Z");
  EXPECT_EQ(config->webhooks.at(1).signature, SignatureScheme::kRelay);
  EXPECT_TRUE(config->webhooks.at(1).signing_key.empty());
  EXPECT_EQ(to_string(SignatureScheme::kBoth), "both");
}

}  // namespace
}  // namespace relay::config
