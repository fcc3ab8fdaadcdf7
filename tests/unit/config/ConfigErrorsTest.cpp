// Broken configs and the exact "path:line:col: message" lines they produce. The wording is part
// of the product (operators grep it, check-config prints it): change it deliberately.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ConfigTestSupport.hpp"
#include "relay/config/ConfigLoader.hpp"

namespace relay::config {
namespace {

using testing_support::kGoodWebhook;
using testing_support::problems;
using Lines = std::vector<std::string>;

const std::string kHooks = "webhooks:\n" + std::string(kGoodWebhook);

TEST(ConfigErrors, YamlSyntaxError) {
  EXPECT_EQ(problems("server:\n  listen: [127.0.0.1:8686\nstorage: {}\n"),
            (Lines{"t.yaml:3:8: YAML syntax error: end of sequence flow not found"}));
  EXPECT_EQ(problems("server: listen: x\n"),
            (Lines{"t.yaml:1:15: YAML syntax error: illegal map value"}));
}

TEST(ConfigErrors, EmptyFileAndWrongTopLevel) {
  EXPECT_EQ(problems(""), (Lines{"t.yaml:1:1: config file is empty"}));
  EXPECT_EQ(problems("# only a comment\n"), (Lines{"t.yaml:1:1: config file is empty"}));
  EXPECT_EQ(problems("- a\n- b\n"),
            (Lines{"t.yaml:1:1: expected a mapping at top level (server:, storage:, webhooks:, "
                   "...)"}));
  EXPECT_EQ(problems("webhooks: []\n---\nwebhooks: []\n"),
            (Lines{"t.yaml:2:1: expected one YAML document, found more ('---')"}));
  // yaml-cpp 0.7's LoadAll() never returns on this input (found by tests/fuzz/config_fuzz.cpp).
  EXPECT_FALSE(problems(",W").empty());
  EXPECT_FALSE(problems(std::string(",W\0", 3)).empty());
}

TEST(ConfigErrors, UnknownKeys) {
  EXPECT_EQ(problems("storage:\n  path: /x.db\n  retension: 30d\nwebhook: []\n"),
            (Lines{"t.yaml:3:3: unknown key 'retension' in storage (did you mean 'retention'?)",
                   "t.yaml:4:1: unknown key 'webhook' at top level (did you mean 'webhooks'?)"}));
  EXPECT_EQ(
      problems(kHooks + "    enabeld: false\n"),
      (Lines{"t.yaml:6:5: unknown key 'enabeld' in webhooks[crm] (did you mean 'enabled'?)"}));
  EXPECT_EQ(problems("logging: {level: info, colour: true}\n"),
            (Lines{"t.yaml:1:24: unknown key 'colour' in logging"}));
}

TEST(ConfigErrors, DuplicateKeys) {
  EXPECT_EQ(problems("storage:\n  retention: 1d\n  retention: 2d\n"),
            (Lines{"t.yaml:3:3: duplicate key 'retention' in storage (first at 2:3)"}));
}

TEST(ConfigErrors, WrongTypes) {
  EXPECT_EQ(problems("server: 8686\n"
                     "delivery:\n"
                     "  concurrency: many\n"
                     "  per_webhook_concurrency: 0\n"
                     "  allow_private_networks: yes please\n"
                     "  retry_schedule: 5m\n"
                     "logging:\n"
                     "  level: [info]\n"),
            (Lines{
                "t.yaml:1:9: server: expected a mapping",
                "t.yaml:3:16: delivery.concurrency: expected a positive integer",
                "t.yaml:4:28: delivery.per_webhook_concurrency: expected a positive integer",
                "t.yaml:5:27: delivery.allow_private_networks: expected true or false",
                "t.yaml:6:19: delivery.retry_schedule: expected a non-empty list of durations, "
                "e.g. [0s, 1m, 5m]",
                "t.yaml:8:10: logging.level: expected a string",
            }));
  EXPECT_EQ(problems("delivery:\n  concurrency: 99999999999\n"),
            (Lines{"t.yaml:2:16: delivery.concurrency: must be at most 2147483647"}));
  EXPECT_EQ(problems("delivery:\n  concurrency: -1\n"),
            (Lines{"t.yaml:2:16: delivery.concurrency: expected a positive integer"}));
}

TEST(ConfigErrors, EmptyValueIsReportedAtItsKey) {
  EXPECT_EQ(problems("storage:\n  retention:\n  path: /x.db\n"),
            (Lines{"t.yaml:2:3: storage.retention: expected a duration such as 250ms, 30s, 5m, "
                   "2h or 30d"}));
}

TEST(ConfigErrors, Durations) {
  EXPECT_EQ(problems("storage:\n"
                     "  retention: 0d\n"
                     "delivery:\n"
                     "  timeout: 30 seconds\n"
                     "  retry_schedule: [0s, 1h30m, 5m]\n"
                     "shutdown_grace: -1s\n"),
            (Lines{
                "t.yaml:2:14: storage.retention: must be greater than 0",
                "t.yaml:4:12: delivery.timeout: invalid duration '30 seconds' (expected a whole "
                "number and a unit: 250ms, 30s, 5m, 2h or 30d)",
                "t.yaml:5:24: delivery.retry_schedule[1]: invalid duration '1h30m' (expected a "
                "whole number and a unit: 250ms, 30s, 5m, 2h or 30d)",
                "t.yaml:6:17: shutdown_grace: invalid duration '-1s' (expected a whole number and "
                "a unit: 250ms, 30s, 5m, 2h or 30d)",
            }));
  std::string long_schedule = "delivery:\n  retry_schedule: [";
  for (int i = 0; i < 21; ++i) long_schedule += i == 0 ? "1s" : ", 1s";
  long_schedule += "]\n";
  EXPECT_EQ(problems(long_schedule),
            (Lines{"t.yaml:2:19: delivery.retry_schedule: at most 20 entries (found 21)"}));
}

TEST(ConfigErrors, EndpointHealth) {
  EXPECT_EQ(
      problems("delivery:\n"
               "  circuit_breaker: { failures: 0, cooldown: 30s, max_cooldown: 10s, probes: 2 }\n"
               "  auto_disable_after: 5 days\n"),
      (Lines{
          "t.yaml:2:20: delivery.circuit_breaker: max_cooldown must be at least cooldown",
          "t.yaml:2:32: delivery.circuit_breaker.failures: expected a positive integer",
          "t.yaml:2:69: unknown key 'probes' in delivery.circuit_breaker",
          "t.yaml:3:23: delivery.auto_disable_after: invalid duration '5 days' (expected a "
          "whole number and a unit: 250ms, 30s, 5m, 2h or 30d)",
      }));
  EXPECT_EQ(problems("delivery:\n  circuit_breaker: 10\n"),
            (Lines{"t.yaml:2:20: delivery.circuit_breaker: expected a mapping, e.g. { failures: "
                   "10, cooldown: 30s }"}));
}

TEST(ConfigErrors, ListenAddress) {
  const auto listen = [](const std::string& value) {
    return problems("server:\n  listen: \"" + value + "\"\n");
  };
  EXPECT_EQ(listen("127.0.0.1"),
            (Lines{"t.yaml:2:11: server.listen: expected HOST:PORT, e.g. 127.0.0.1:8686 or "
                   "[::1]:8686"}));
  EXPECT_EQ(listen("127.0.0.1:70000"),
            (Lines{"t.yaml:2:11: server.listen: invalid port (expected 1-65535, or 0 for any "
                   "free port)"}));
  EXPECT_EQ(listen("::1:8686"),
            (Lines{"t.yaml:2:11: server.listen: IPv6 addresses must be written in brackets, "
                   "e.g. [::1]:8686"}));
  EXPECT_EQ(listen(":8686"), (Lines{"t.yaml:2:11: server.listen: missing host"}));
  EXPECT_EQ(listen(""), (Lines{"t.yaml:2:11: server.listen: must not be empty"}));
}

TEST(ConfigErrors, TlsNeedsBothFilesAndTheyMustBeReadable) {
  EXPECT_EQ(problems("server:\n  tls_cert: /nonexistent/cert.pem\n"),
            (Lines{"t.yaml:2:13: server.tls_cert: cannot read '/nonexistent/cert.pem': No such "
                   "file or directory",
                   "t.yaml:2:13: server.tls_cert: server.tls_key must be set too (TLS needs "
                   "both)"}));
  EXPECT_EQ(problems("delivery:\n  ca_file: /nonexistent/ca.pem\n"),
            (Lines{"t.yaml:2:12: delivery.ca_file: cannot read '/nonexistent/ca.pem': No such "
                   "file or directory"}));
}

TEST(ConfigErrors, LoggingValues) {
  EXPECT_EQ(problems("logging: {level: verbose, format: xml}\n"),
            (Lines{"t.yaml:1:18: logging.level: must be one of trace, debug, info, warn, error, "
                   "critical, off (found 'verbose')",
                   "t.yaml:1:35: logging.format: must be text or json (found 'xml')"}));
}

TEST(ConfigErrors, WebhookIds) {
  EXPECT_EQ(problems(kHooks + kHooks.substr(10)),
            (Lines{"t.yaml:6:9: webhooks[crm].id: duplicate webhook id 'crm' (first defined at "
                   "2:5)"}));
  EXPECT_EQ(problems("webhooks:\n"
                     "  - id: CRM!\n"
                     "    url: https://crm.example.com/\n"
                     "    secret: x\n"
                     "    events: ['*']\n"
                     "  - url: https://crm.example.com/\n"
                     "    secret: x\n"
                     "    events: ['*']\n"),
            (Lines{"t.yaml:2:9: webhooks[0].id: invalid id 'CRM!' (use 1-64 characters from "
                   "a-z, 0-9, _ and -)",
                   "t.yaml:6:5: webhooks[1]: missing required key 'id'"}));
  EXPECT_EQ(problems("webhooks: {crm: {}}\n"),
            (Lines{"t.yaml:1:11: webhooks: expected a list of webhooks (- id: ...)"}));
}

TEST(ConfigErrors, MissingRequiredWebhookKeysAreReportedAtTheEntry) {
  EXPECT_EQ(problems("webhooks:\n  - id: crm\n    enabled: true\n"),
            (Lines{"t.yaml:2:5: webhooks[crm]: missing required key 'url'",
                   "t.yaml:2:5: webhooks[crm]: missing required key 'secret' (or 'secret_file')",
                   "t.yaml:2:5: webhooks[crm]: missing required key 'events'"}));
}

TEST(ConfigErrors, WebhookUrls) {
  const auto url = [](const std::string& value, const std::string& extra = "") {
    return problems(
        "webhooks:\n"
        "  - id: crm\n"
        "    url: \"" +
        value +
        "\"\n"
        "    secret: x\n"
        "    events: ['*']\n" +
        extra);
  };
  const auto at = [](const std::string& message) {
    return Lines{"t.yaml:3:10: webhooks[crm].url: " + message};
  };
  EXPECT_EQ(url("http://crm.example.com/"),
            at("http:// is not allowed unless allow_insecure_http: true"));
  EXPECT_EQ(url("http://crm.example.com/", "    allow_insecure_http: true\n"), Lines{});
  EXPECT_EQ(url("ftp://crm.example.com/"), at("expected an absolute https:// URL"));
  EXPECT_EQ(url("/hooks/relay"), at("expected an absolute https:// URL"));
  EXPECT_EQ(url("https://user:pw@crm.example.com/"),
            at("must not contain a user name or password (user:password@)"));
  EXPECT_EQ(url("https://crm.example.com/#frag"), at("must not contain a fragment (#...)"));
  EXPECT_EQ(url("https:///path"), at("missing host"));
  EXPECT_EQ(url("https://crm.example.com:0/"), at("invalid port (expected 1-65535)"));
  EXPECT_EQ(url("https://crm.example.com:99999/"), at("invalid port (expected 1-65535)"));
  EXPECT_EQ(url("https://crm example.com/"), at("must not contain spaces or control characters"));
  EXPECT_EQ(url("https://[::1]:8443/x"), Lines{});
  // Hosts the delivery client cannot use (found by tests/fuzz/url_fuzz.cpp).
  EXPECT_EQ(url("https://[fe80::1%25eth0]/"),
            at("invalid IPv6 address in brackets (zone ids such as %eth0 are not supported)"));
  EXPECT_EQ(url("https://[1::2::3]/"),
            at("invalid IPv6 address in brackets (zone ids such as %eth0 are not supported)"));
  for (const char* bad : {"https://crm~1.example.com/", "https://crm%2e.example.com/",
                          "https://.crm.example.com/", "https://-crm.example.com/"}) {
    EXPECT_EQ(url(bad), at("invalid host name (letters, digits, '-', '.' and '_'; not starting "
                           "with '.' or '-')"))
        << bad;
  }
  EXPECT_EQ(url("https://crm.example.com:8443/a?b=c"), Lines{});
}

// The URL grammar is common::parse_url's (the delivery client's); check-config words each rule
// its own way and adds its policy (no fragment, no empty port) on top.
TEST(ConfigErrors, WebhookUrlsUseTheClientGrammar) {
  const auto url = [](const std::string& value) {
    return problems("webhooks:\n  - id: crm\n    url: \"" + value +
                    "\"\n    secret: x\n    events: ['*']\n");
  };
  const auto at = [](const std::string& message) {
    return Lines{"t.yaml:3:10: webhooks[crm].url: " + message};
  };
  EXPECT_EQ(url("https://[::1/"), at("missing ']' after the IPv6 address"));
  EXPECT_EQ(url("https://[::1]x/"), at("unexpected text after ']'"));
  EXPECT_EQ(url("https://::1/"), at("IPv6 addresses must be written in brackets, e.g. [::1]:8686"));
  EXPECT_EQ(url("https://:8443/"), at("missing host"));
  // RFC 3986 and the client read "host:" as the default port; check-config asks for a number.
  EXPECT_EQ(url("https://crm.example.com:/"), at("invalid port (expected 1-65535)"));
  EXPECT_EQ(url("https://crm.example.com:000443/"), Lines{});
  EXPECT_EQ(url("HTTPS://CRM.example.com/A?B"), Lines{});
}

TEST(ConfigErrors, SecretsAreNeverQuoted) {
  const auto lines = problems(
      "webhooks:\n"
      "  - id: crm\n"
      "    url: https://crm.example.com/\n"
      "    secret: \"\"\n"
      "    events: ['*']\n"
      "  - id: two\n"
      "    url: https://two.example.com/\n"
      "    secret: topsecret-${BAD NAME}\n"
      "    secret_file: /x\n"
      "    events: ['*']\n");
  EXPECT_EQ(lines, (Lines{"t.yaml:4:13: webhooks[crm].secret: must not be empty",
                          "t.yaml:9:5: webhooks[two]: set either secret or secret_file, not "
                          "both"}));
  for (const auto& l : lines) EXPECT_EQ(l.find("topsecret"), std::string::npos) << l;
  const auto bad_ref = problems(
      "webhooks:\n"
      "  - id: two\n"
      "    url: https://two.example.com/\n"
      "    secret: topsecret-${BAD NAME}\n"
      "    events: ['*']\n");
  ASSERT_EQ(bad_ref.size(), 1U);
  EXPECT_EQ(bad_ref[0].rfind("t.yaml:4:13: webhooks[two].secret: invalid environment variable "
                             "reference",
                             0),
            0U);
  EXPECT_EQ(bad_ref[0].find("topsecret"), std::string::npos);
}

TEST(ConfigErrors, EventTypes) {
  EXPECT_EQ(problems("webhooks:\n"
                     "  - id: crm\n"
                     "    url: https://crm.example.com/\n"
                     "    secret: x\n"
                     "    events: [ticket.creatd, \"tickets.*\", \"message.*\", [a]]\n"
                     "  - id: none\n"
                     "    url: https://crm.example.com/\n"
                     "    secret: x\n"
                     "    events: []\n"),
            (Lines{
                "t.yaml:5:14: webhooks[crm].events[0]: unknown event type 'ticket.creatd' (did "
                "you mean 'ticket.created'?)",
                "t.yaml:5:29: webhooks[crm].events[1]: unknown event group 'tickets.*' (groups: "
                "ticket.*, message.*, customer.*, sla.*) (did you mean 'ticket.*'?)",
                "t.yaml:5:55: webhooks[crm].events[3]: expected an event type (a string)",
                "t.yaml:9:13: webhooks[none].events: expected a non-empty list of event types, "
                "e.g. [ticket.created, \"message.*\"]",
            }));
}

TEST(ConfigErrors, Headers) {
  EXPECT_EQ(problems(kHooks + "    headers:\n"
                              "      X-Team: support\n"
                              "      content-type: text/plain\n"
                              "      X-Relay-Signature: forged\n"
                              "      Bad Name: x\n"
                              "      x-team: again\n"
                              "      X-Multi: \"a\\nb\"\n"
                              "      X-List: [a]\n"),
            (Lines{
                "t.yaml:8:7: webhooks[crm].headers: 'content-type' is set by relayd and cannot "
                "be overridden",
                "t.yaml:9:7: webhooks[crm].headers: 'X-Relay-Signature' is reserved (relayd "
                "sets X-Relay-* headers)",
                "t.yaml:10:7: webhooks[crm].headers: 'Bad Name' is not a valid header name",
                "t.yaml:11:7: webhooks[crm].headers: duplicate header 'x-team' (first at 7:7)",
                "t.yaml:12:16: webhooks[crm].headers.X-Multi: must be one line without control "
                "characters",
                "t.yaml:13:15: webhooks[crm].headers.X-List: expected a string",
            }));
  EXPECT_EQ(problems(kHooks + "    headers: [X-Team]\n"),
            (Lines{"t.yaml:6:14: webhooks[crm].headers: expected a mapping of header names to "
                   "values"}));
}

TEST(ConfigErrors, WebhookScalars) {
  EXPECT_EQ(problems(kHooks + "    enabled: maybe\n    max_queued: 0\n"),
            (Lines{"t.yaml:6:14: webhooks[crm].enabled: expected true or false",
                   "t.yaml:7:17: webhooks[crm].max_queued: expected a positive integer"}));
}

TEST(ConfigErrors, EveryProblemIsReportedInFileOrder) {
  const auto lines = problems(
      "server:\n"
      "  listen: localhost\n"
      "  max_body_bytes: 0\n"
      "storage:\n"
      "  path: \"\"\n"
      "  retension: 30d\n"
      "delivery:\n"
      "  concurrency: 0\n"
      "  timeout: 0s\n"
      "logging: {level: loud}\n"
      "webhooks:\n"
      "  - id: crm\n"
      "    url: http://crm.example.com/\n"
      "    secret: ${RELAY_CRM_SECRET}\n"
      "    events: [ticket.creatd]\n"
      "  - id: crm\n"
      "    url: https://crm.example.com/\n"
      "    secret: x\n"
      "    events: ['*']\n");
  EXPECT_EQ(lines,
            (Lines{
                "t.yaml:2:11: server.listen: expected HOST:PORT, e.g. 127.0.0.1:8686 or "
                "[::1]:8686",
                "t.yaml:3:19: server.max_body_bytes: expected a positive integer",
                "t.yaml:5:9: storage.path: must not be empty",
                "t.yaml:6:3: unknown key 'retension' in storage (did you mean 'retention'?)",
                "t.yaml:8:16: delivery.concurrency: expected a positive integer",
                "t.yaml:9:12: delivery.timeout: must be greater than 0",
                "t.yaml:10:18: logging.level: must be one of trace, debug, info, warn, error, "
                "critical, off (found 'loud')",
                "t.yaml:13:10: webhooks[crm].url: http:// is not allowed unless "
                "allow_insecure_http: true",
                "t.yaml:14:13: webhooks[crm].secret: environment variable RELAY_CRM_SECRET is not "
                "set",
                "t.yaml:15:14: webhooks[crm].events[0]: unknown event type 'ticket.creatd' (did "
                "you mean 'ticket.created'?)",
                "t.yaml:16:9: webhooks[crm].id: duplicate webhook id 'crm' (first defined at "
                "12:5)",
            }));
}

TEST(ConfigErrors, SignatureSchemes) {
  EXPECT_EQ(problems(kHooks + "    signature: hmac\n"),
            (Lines{"t.yaml:6:16: webhooks[crm].signature: unknown signature scheme 'hmac' "
                   "(expected relay, standard or both)"}));
  // The secret must be whsec_ + base64 of 24-64 bytes; never quoted in the message.
  EXPECT_EQ(problems(kHooks + "    signature: standard\n"),
            (Lines{"t.yaml:4:13: webhooks[crm].secret: must start with 'whsec_' (the Standard "
                   "Webhooks secret format; make one with 'relayd gen-secret') (required by "
                   "signature: standard or both)"}));
  EXPECT_EQ(problems("webhooks:\n"
                     "  - id: crm\n"
                     "    url: https://crm.example.com/hooks\n"
                     "    secret: whsec_c2hvcnQ=\n"
                     "    signature: both\n"
                     "    events: [ticket.created]\n"),
            (Lines{"t.yaml:4:13: webhooks[crm].secret: must decode to 24-64 bytes (it decodes "
                   "to 5) (required by signature: standard or both)"}));
  EXPECT_EQ(problems("webhooks:\n"
                     "  - id: crm\n"
                     "    url: https://crm.example.com/hooks\n"
                     "    secret: whsec_not*base64\n"
                     "    signature: standard\n"
                     "    events: [ticket.created]\n"),
            (Lines{"t.yaml:4:13: webhooks[crm].secret: the part after 'whsec_' is not valid "
                   "base64 (required by signature: standard or both)"}));
}

TEST(ConfigErrors, PreviousSecrets) {
  EXPECT_EQ(problems(kHooks + "    previous_secrets:\n      - secret: old\n"),
            (Lines{"t.yaml:7:9: webhooks[crm].previous_secrets[0]: missing required key "
                   "'expires' (an RFC 3339 UTC time such as 2026-12-01T00:00:00Z)"}));
  EXPECT_EQ(problems(kHooks + "    previous_secrets:\n      - {secret: old, expires: tomorrow}\n"),
            (Lines{"t.yaml:7:32: webhooks[crm].previous_secrets[0].expires: invalid time "
                   "'tomorrow' (expected an RFC 3339 UTC time such as 2026-12-01T00:00:00Z)"}));
  EXPECT_EQ(problems(kHooks + "    previous_secrets:\n      - {expires: 2026-12-01T00:00:00Z}\n"),
            (Lines{"t.yaml:7:9: webhooks[crm].previous_secrets[0]: missing required key "
                   "'secret' (or 'secret_file')"}));
  EXPECT_EQ(problems(kHooks + "    previous_secrets: old\n"),
            (Lines{"t.yaml:6:23: webhooks[crm].previous_secrets: expected a list of {secret (or "
                   "secret_file), expires}"}));
  std::string six = kHooks + "    previous_secrets:\n";
  for (int i = 0; i < 6; ++i) six += "      - {secret: s, expires: 2026-12-01T00:00:00Z}\n";
  EXPECT_EQ(problems(six), (Lines{"t.yaml:7:7: webhooks[crm].previous_secrets: at most 5 "
                                  "previous secrets (found 6)"}));
  // With signature: standard every previous secret must be a whsec_ secret too.
  EXPECT_EQ(problems("webhooks:\n"
                     "  - id: crm\n"
                     "    url: https://crm.example.com/hooks\n"
                     "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
                     "    signature: standard\n"
                     "    previous_secrets: [{secret: old, expires: 2026-12-01T00:00:00Z}]\n"
                     "    events: [ticket.created]\n"),
            (Lines{"t.yaml:6:33: webhooks[crm].previous_secrets[0].secret: must start with "
                   "'whsec_' (the Standard Webhooks secret format; make one with 'relayd "
                   "gen-secret') (required by signature: standard or both)"}));
}

}  // namespace
}  // namespace relay::config

namespace relay::config {
namespace {

TEST(ConfigErrors, NoSuggestionForAKeyFarFromEveryKnownOne) {
  const auto lines = problems("logging: {level: info, colour: true}\n");
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_EQ(lines[0].find("did you mean"), std::string::npos) << lines[0];
}

TEST(ConfigErrors, UnquotedStarSaysToQuoteIt) {
  // yaml-cpp alone says "alias not found after *".
  EXPECT_EQ(problems("webhooks:\n"
                     "  - id: crm\n"
                     "    url: https://crm.example.com/\n"
                     "    secret: x\n"
                     "    events: [*]\n"),
            (Lines{"t.yaml:5:14: an unquoted * starts a YAML alias: quote it, as in events: "
                   "[\"*\"]"}));
}

TEST(ConfigErrors, WebhookCaFileMustHoldAPemCertificate) {
  const auto path = std::filesystem::temp_directory_path() / "relay-not-a-ca.pem";
  std::ofstream(path) << "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  const auto lines = problems(kHooks + "    ca_file: " + path.string() + "\n");
  std::filesystem::remove(path);
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_NE(lines[0].find("webhooks[crm].ca_file: '" + path.string() +
                          "' holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
            std::string::npos)
      << lines[0];
}

TEST(ConfigErrors, WebhookCaFileMustBeReadable) {
  const auto lines = problems(kHooks + "    ca_file: /nonexistent/relay-ca.pem\n");
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_NE(lines[0].find("webhooks[crm].ca_file: cannot read '/nonexistent/relay-ca.pem'"),
            std::string::npos)
      << lines[0];
}

}  // namespace
}  // namespace relay::config
