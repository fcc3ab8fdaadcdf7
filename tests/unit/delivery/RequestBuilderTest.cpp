#include "relay/delivery/RequestBuilder.hpp"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "relay/common/Version.hpp"
#include "relay/delivery/Signer.hpp"

namespace relay::delivery {
namespace {

using namespace std::chrono_literals;

config::WebhookConfig make_webhook() {
  config::WebhookConfig w;
  w.id = "crm";
  w.url = "https://crm.example.com/hooks/relay";
  w.secret = "whsec_test";
  w.headers = {{"X-Team", "support"},
               {"content-type", "text/plain"},
               {"Host", "evil.example"},
               {"Content-Length", "1"},
               {"transfer-encoding", "chunked"},
               {"CONNECTION", "close"},
               {"User-Agent", "curl"},
               {"x-relay-signature", "sha256=forged"},
               {"X-Relay-Whatever", "x"},
               {"Authorization", "Bearer abc"}};
  return w;
}

TEST(RequestBuilder, HeadersInOrderAndSigned) {
  config::DeliveryConfig d;
  d.timeout = 1500ms;
  d.allow_private_networks = true;
  const auto w = make_webhook();
  const std::string body = R"({"id":"evt_1","event":"ticket.created"})";
  const OutgoingRequest r = build_request(w, d, "dlv_1", "ticket.created", body);

  EXPECT_EQ(r.url, w.url);
  EXPECT_EQ(r.body, body);
  EXPECT_EQ(r.timeout, 1500ms);
  EXPECT_TRUE(r.allow_private_networks);
  EXPECT_FALSE(r.allow_insecure_http);
  const Headers expected = {
      {"Content-Type", "application/json"},
      {"User-Agent", std::string("relayd/") + relay::kVersion},
      {"X-Relay-Event", "ticket.created"},
      {"X-Relay-Delivery", "dlv_1"},
      {"X-Relay-Signature", "sha256=" + hmac_sha256_hex("whsec_test", body)},
      {"X-Team", "support"},
      {"Authorization", "Bearer abc"},
  };
  EXPECT_EQ(r.headers, expected);
}

TEST(RequestBuilder, CopiesFlags) {
  config::DeliveryConfig d;
  auto w = make_webhook();
  w.allow_insecure_http = true;
  const auto r = build_request(w, d, "dlv_2", "sla.breached", "{}");
  EXPECT_TRUE(r.allow_insecure_http);
  EXPECT_FALSE(r.allow_private_networks);
  EXPECT_EQ(r.timeout, d.timeout);
}

TEST(RequestBuilder, HeadersForLogShowsOnlyRelaydsOwnHeaders) {
  const Headers h = {{"Content-Type", "application/json"},
                     {"X-Relay-Signature", "sha256=abc"},
                     {"Authorization", "Bearer abc"},
                     {"Cookie", "session=1"},
                     {"X-Api-Key", "k"},
                     {"X-Auth-Token", "t"},
                     {"X-Client-Secret", "s"},
                     {"X-Password", "p"},
                     {"X-Team", "support"},
                     {"X-Team", "ops"}};
  const auto j = nlohmann::json::parse(headers_for_log(h));
  EXPECT_EQ(j["Content-Type"], "application/json");
  EXPECT_EQ(j["X-Relay-Signature"], "sha256=abc");
  EXPECT_EQ(j["Authorization"], "[redacted]");
  EXPECT_EQ(j["Cookie"], "[redacted]");
  EXPECT_EQ(j["X-Api-Key"], "[redacted]");
  EXPECT_EQ(j["X-Auth-Token"], "[redacted]");
  EXPECT_EQ(j["X-Client-Secret"], "[redacted]");
  EXPECT_EQ(j["X-Password"], "[redacted]");
  // Issue #13: every configured header value is a secret, whatever its name.
  EXPECT_EQ(j["X-Team"], "[redacted], [redacted]");
  // Order is kept.
  EXPECT_EQ(headers_for_log({{"X-Relay-Event", "a"}, {"User-Agent", "b"}}),
            R"({"X-Relay-Event":"a","User-Agent":"b"})");
  EXPECT_EQ(headers_for_log({{"B", "1"}, {"A", "2"}}), R"({"B":"[redacted]","A":"[redacted]"})");
  EXPECT_EQ(headers_for_log({}), "{}");
}

TEST(RequestBuilder, HeadersJsonIsValidJsonForAnyBytes) {
  // The usual headers: plain ASCII, each name once.
  EXPECT_EQ(headers_for_log({{"Content-Type", "application/json"}, {"authorization", "Bearer x"}}),
            R"({"Content-Type":"application/json","authorization":"[redacted]"})");
  EXPECT_EQ(headers_json({{"Authorization", "Bearer x"}}, false),
            R"({"Authorization":"Bearer x"})");
  const std::string long_name = std::string(200, 'x') + "-Access-TOKEN";
  EXPECT_EQ(headers_for_log({{long_name, "t"}}), "{\"" + long_name + "\":\"[redacted]\"}");
  // Anything a receiver may send back: quotes, backslashes, control bytes, UTF-8, invalid UTF-8,
  // a name twice.
  const Headers odd = {{"X-Quote", "say \"hi\" \\ bye"},
                       {"X-Tab", "a\tb"},
                       {"X-Utf8", "caf\xc3\xa9"},
                       {"X-Bad", "\xff\xfe"},
                       {"Set-Cookie", "a=1"},
                       {"Set-Cookie", "b=2"}};
  const auto j = nlohmann::json::parse(headers_json(odd, false));
  EXPECT_EQ(j["X-Quote"], "say \"hi\" \\ bye");
  EXPECT_EQ(j["X-Tab"], "a\tb");
  EXPECT_EQ(j["X-Utf8"], "caf\xc3\xa9");
  EXPECT_EQ(j["X-Bad"], "\xef\xbf\xbd\xef\xbf\xbd");  // each invalid byte becomes U+FFFD
  EXPECT_EQ(j["Set-Cookie"], "a=1, b=2");
  EXPECT_EQ(nlohmann::json::parse(headers_for_log(odd))["Set-Cookie"], "[redacted], [redacted]");
  // With redact_credentials only the names that look secret are hidden (response headers).
  const auto named = nlohmann::json::parse(headers_json(
      {{"X-Auth", "Basic dTpw"}, {"X-Api-Pass", "p"}, {"X-Session", "s"}, {"X-Team", "t"}}, true));
  EXPECT_EQ(named["X-Auth"], "[redacted]");
  EXPECT_EQ(named["X-Api-Pass"], "[redacted]");
  EXPECT_EQ(named["X-Session"], "[redacted]");
  EXPECT_EQ(named["X-Team"], "t");
}

// The Standard Webhooks secret of the specification's example, and a second one.
constexpr std::string_view kWhsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view kWhsecOld = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

config::WebhookConfig standard_webhook(config::SignatureScheme scheme) {
  config::WebhookConfig w;
  w.id = "crm";
  w.url = "https://crm.example.com/hooks/relay";
  w.secret = std::string(kWhsec);
  w.signature = scheme;
  std::string error;
  w.signing_key = *config::decode_standard_secret(kWhsec, error);
  return w;
}

const std::string* find_header(const OutgoingRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

TEST(RequestBuilder, StandardSchemeHeaders) {
  const auto w = standard_webhook(config::SignatureScheme::kStandard);
  const std::string body = R"({"id":"evt_1"})";
  const auto now = common::TimePoint(std::chrono::milliseconds(1614265330123));
  const auto r = build_request(w, {}, "dlv_1", "ticket.created", body, now);
  EXPECT_EQ(find_header(r, "X-Relay-Signature"), nullptr);
  ASSERT_NE(find_header(r, "webhook-id"), nullptr);
  EXPECT_EQ(*find_header(r, "webhook-id"), "dlv_1");
  EXPECT_EQ(*find_header(r, "webhook-timestamp"), "1614265330");
  EXPECT_EQ(*find_header(r, "webhook-signature"),
            standard_signature(w.signing_key, "dlv_1", 1614265330, body));
  EXPECT_EQ(*find_header(r, "X-Relay-Event"), "ticket.created");
  EXPECT_EQ(*find_header(r, "X-Relay-Delivery"), "dlv_1");
  EXPECT_EQ(find_header(r, "X-Relay-Test"), nullptr);
}

TEST(RequestBuilder, BothSchemesAndTestFlag) {
  const auto w = standard_webhook(config::SignatureScheme::kBoth);
  const std::string body = R"({"id":"evt_test_1"})";
  const auto r = build_request(w, {}, "dlv_2", "ticket.created", body, common::now_ms(), true);
  ASSERT_NE(find_header(r, "X-Relay-Signature"), nullptr);
  // relay: the secret as written is the key, as the user guide's receivers use it.
  EXPECT_EQ(*find_header(r, "X-Relay-Signature"), signature_header(kWhsec, body));
  EXPECT_NE(find_header(r, "webhook-signature"), nullptr);
  ASSERT_NE(find_header(r, "X-Relay-Test"), nullptr);
  EXPECT_EQ(*find_header(r, "X-Relay-Test"), "true");
}

TEST(RequestBuilder, PreviousSecretsSignUntilTheyExpire) {
  auto w = standard_webhook(config::SignatureScheme::kStandard);
  std::string error;
  config::PreviousSecret old;
  old.secret = std::string(kWhsecOld);
  old.key = *config::decode_standard_secret(kWhsecOld, error);
  const auto now = common::TimePoint(std::chrono::milliseconds(1700000000000));
  old.expires = now + std::chrono::seconds(1);
  w.previous_secrets.push_back(old);
  const std::string body = "{}";
  const auto before = build_request(w, {}, "dlv_3", "ticket.created", body, now);
  const auto current = standard_signature(w.signing_key, "dlv_3", 1700000000, body);
  const auto previous = standard_signature(old.key, "dlv_3", 1700000000, body);
  EXPECT_EQ(*find_header(before, "webhook-signature"), current + " " + previous);
  // At the expiry instant the old secret is gone; the current one is always first.
  const auto after = build_request(w, {}, "dlv_3", "ticket.created", body, old.expires);
  EXPECT_EQ(*find_header(after, "webhook-signature"),
            standard_signature(w.signing_key, "dlv_3", 1700000001, body));
}

TEST(RequestBuilder, StandardHeadersCannotBeOverridden) {
  auto w = standard_webhook(config::SignatureScheme::kStandard);
  w.headers = {{"webhook-signature", "v1,forged"}, {"Webhook-Id", "x"}, {"X-Team", "a"}};
  const auto r = build_request(w, {}, "dlv_4", "ticket.created", "{}");
  int signatures = 0;
  for (const auto& [k, v] : r.headers) {
    if (k == "webhook-signature" || k == "Webhook-Id") ++signatures;
    EXPECT_NE(v, "v1,forged");
  }
  EXPECT_EQ(signatures, 1);
  EXPECT_NE(find_header(r, "X-Team"), nullptr);
}

}  // namespace
}  // namespace relay::delivery
