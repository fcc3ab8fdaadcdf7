#include <gtest/gtest.h>

#include <string>

#include "ConfigTestSupport.hpp"
#include "relay/config/ConfigLoader.hpp"

namespace relay::config {
namespace {

using testing_support::fake_env;
using testing_support::problems;

std::string expand_ok(std::string_view text, const EnvLookup& env) {
  std::string error;
  auto v = expand_env(text, env, error);
  EXPECT_TRUE(v.has_value()) << text << ": " << error;
  return v.value_or("<error>");
}

std::string expand_error(std::string_view text, const EnvLookup& env) {
  std::string error;
  auto v = expand_env(text, env, error);
  EXPECT_FALSE(v.has_value()) << text;
  return error;
}

TEST(ConfigEnv, ExpandsVariablesDefaultsAndDollars) {
  const auto env = fake_env({{"A", "alpha"}, {"EMPTY", ""}, {"B_2", "x"}});
  EXPECT_EQ(expand_ok("plain", env), "plain");
  EXPECT_EQ(expand_ok("${A}", env), "alpha");
  EXPECT_EQ(expand_ok("pre-${A}-${B_2}-post", env), "pre-alpha-x-post");
  EXPECT_EQ(expand_ok("${EMPTY}", env), "");
  EXPECT_EQ(expand_ok("${UNSET:-./state}/relayd.db", env), "./state/relayd.db");
  EXPECT_EQ(expand_ok("${EMPTY:-fallback}", env), "fallback");
  EXPECT_EQ(expand_ok("${A:-fallback}", env), "alpha");
  EXPECT_EQ(expand_ok("${UNSET:-}", env), "");
  EXPECT_EQ(expand_ok("cost $$5 and $$${A}", env), "cost $5 and $alpha");
  EXPECT_EQ(expand_ok("$HOME and $ alone and trailing $", env), "$HOME and $ alone and trailing $");
}

TEST(ConfigEnv, ReportsMissingAndMalformedReferences) {
  const auto env = fake_env();
  EXPECT_EQ(expand_error("${RELAY_CRM_SECRET}", env),
            "environment variable RELAY_CRM_SECRET is not set");
  EXPECT_EQ(expand_error("abc${OPEN", env), "unterminated ${ (missing '}')");
  const std::string bad =
      "invalid environment variable reference (expected ${NAME} or ${NAME:-default}, NAME made "
      "of A-Z, a-z, 0-9 and _; write $$ for a literal $)";
  EXPECT_EQ(expand_error("${}", env), bad);
  EXPECT_EQ(expand_error("${1ABC}", env), bad);
  EXPECT_EQ(expand_error("${A-B}", env), bad);
}

TEST(ConfigEnv, AppliesToEveryStringScalarInTheFile) {
  const auto env = fake_env({{"HOOK_HOST", "hooks.example.org"},
                             {"SECRET", "from-env"},
                             {"TEAM", "blue"},
                             {"CONC", "12"},
                             {"RET", "7d"}});
  const auto config = parse_config(
      "storage: {path: \"${DATA:-/tmp/relay}/db.sqlite\", retention: \"${RET}\"}\n"
      "delivery:\n"
      "  concurrency: ${CONC}\n"
      "webhooks:\n"
      "  - id: crm\n"
      "    url: https://${HOOK_HOST}/in\n"
      "    secret: ${SECRET}\n"
      "    events: [ticket.created]\n"
      "    headers:\n"
      "      X-Team: ${TEAM}\n",
      "t.yaml", env);
  EXPECT_EQ(config->storage.path, "/tmp/relay/db.sqlite");
  EXPECT_EQ(config->storage.retention, std::chrono::hours(24 * 7));
  EXPECT_EQ(config->delivery.concurrency, 12);
  ASSERT_EQ(config->webhooks.size(), 1U);
  EXPECT_EQ(config->webhooks[0].url, "https://hooks.example.org/in");
  EXPECT_EQ(config->webhooks[0].secret, "from-env");
  ASSERT_EQ(config->webhooks[0].headers.size(), 1U);
  EXPECT_EQ(config->webhooks[0].headers[0].second, "blue");
}

TEST(ConfigEnv, MissingVariableIsReportedAtItsScalar) {
  EXPECT_EQ(problems("storage:\n"
                     "  path: ${STATE_DIR}/relayd.db\n"
                     "webhooks:\n"
                     "  - id: crm\n"
                     "    url: https://crm.example.com/hooks\n"
                     "    secret: ${RELAY_CRM_SECRET}\n"
                     "    events: [ticket.created]\n"),
            (std::vector<std::string>{
                "t.yaml:2:9: storage.path: environment variable STATE_DIR is not set",
                "t.yaml:6:13: webhooks[crm].secret: environment variable RELAY_CRM_SECRET is not "
                "set",
            }));
}

}  // namespace
}  // namespace relay::config
