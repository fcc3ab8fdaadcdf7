// The shared vocabulary of common/: ASCII helpers, the redaction rule, reserved headers, the
// event catalogue. Each has one home; these pin what every caller relies on.
#include <gtest/gtest.h>

#include <string>

#include "relay/common/Ascii.hpp"
#include "relay/common/EventTypes.hpp"
#include "relay/common/HeaderNames.hpp"
#include "relay/common/Redaction.hpp"

namespace relay::common {
namespace {

TEST(Ascii, CaseFoldsOnlyAsciiLetters) {
  EXPECT_TRUE(iequals("Authorization", "aUTHORIZATION"));
  EXPECT_FALSE(iequals("Authorization", "Authorizatio"));
  // Bytes >= 0x80 from a client are compared as they are: in a Latin-1 locale std::tolower
  // would fold 0xC4 ('Ä') to 0xE4 ('ä'), and for a negative char it is undefined (issue #13).
  EXPECT_FALSE(iequals("X-\xC4", "X-\xE4"));
  EXPECT_TRUE(iequals("X-\xFF\x80", "x-\xFF\x80"));
  EXPECT_EQ(to_lower('\xC4'), '\xC4');
  EXPECT_EQ(lower("Content-TYPE\xC4"), "content-type\xC4");
  EXPECT_TRUE(istarts_with("Bearer abc", "bearer "));
  EXPECT_FALSE(istarts_with("Bear", "bearer "));
  EXPECT_TRUE(icontains("X-API-Token", "token"));
  EXPECT_FALSE(icontains("X-Team", "token"));
  EXPECT_EQ(trim_ows(" \t chunked \t"), "chunked");
  EXPECT_EQ(hex_value('f'), 15);
  EXPECT_EQ(hex_value('G'), -1);
}

TEST(Redaction, UrlQueryValuesAndUserInfoAreHidden) {
  EXPECT_EQ(redact_url("https://h.example/hook"), "https://h.example/hook");
  EXPECT_EQ(redact_url("https://h.example/hook?api_token=s3cr3t"),
            "https://h.example/hook?api_token=[redacted]");
  EXPECT_EQ(redact_url("https://h.example/p?a=1&&b=&c"),
            "https://h.example/p?a=[redacted]&&b=[redacted]&[redacted]");
  EXPECT_EQ(redact_url("https://user:pw@h.example:8443/p?k=v#frag"),
            "https://[redacted]@h.example:8443/p?k=[redacted]#frag");
  EXPECT_EQ(redact_url("https://h.example/p?"), "https://h.example/p?");
  EXPECT_EQ(redact_url(""), "");
}

TEST(Redaction, SecretLookingNamesAndConfiguredHeaders) {
  for (const char* name : {"Authorization", "X-Auth", "X-Api-Pass", "X-Credential", "X-Session",
                           "X-Access", "Cookie", "X-Api-Key", "client_secret", "api_token"}) {
    EXPECT_TRUE(looks_secret(name)) << name;
  }
  for (const char* name : {"X-Team", "Content-Type", "X-Relay-Signature", "limit"}) {
    EXPECT_FALSE(looks_secret(name)) << name;
  }
  // Names at and past the length lowered in place take the other path; both must agree.
  const std::string pad(60, 'x');
  EXPECT_TRUE(looks_secret(pad + "TOKN" + "Key"));
  EXPECT_TRUE(looks_secret(pad + "-KEY"));
  EXPECT_FALSE(looks_secret(pad + "-Kex"));
  EXPECT_TRUE(looks_secret(pad + pad + "-SeSSion"));
  EXPECT_FALSE(looks_secret(pad + pad + "-Team"));
  EXPECT_TRUE(request_header_shown("X-Relay-Signature"));
  EXPECT_TRUE(request_header_shown("content-type"));
  EXPECT_TRUE(request_header_shown("User-Agent"));
  EXPECT_FALSE(request_header_shown("X-Team"));
  EXPECT_FALSE(request_header_shown("X-Relay"));
}

TEST(HeaderNames, OneListForConfigBuilderAndClient) {
  for (const char* name : {"Host", "content-length", "Transfer-Encoding", "CONNECTION"}) {
    EXPECT_TRUE(is_framing_header(name)) << name;
    EXPECT_TRUE(is_reserved_header(name)) << name;
  }
  EXPECT_FALSE(is_framing_header("Content-Type"));
  EXPECT_TRUE(is_relay_set_header("Content-Type"));
  EXPECT_TRUE(is_relay_set_header("user-agent"));
  EXPECT_TRUE(is_reserved_header("X-Relay-Anything"));
  EXPECT_FALSE(is_reserved_header("X-Team"));
}

TEST(EventTypes, TheCatalogue) {
  EXPECT_EQ(kEventTypes.size(), 12U);
  EXPECT_TRUE(is_known_event_type("sla.breached"));
  EXPECT_FALSE(is_known_event_type("ticket.*"));
  EXPECT_FALSE(is_known_event_type("Ticket.created"));
}

}  // namespace
}  // namespace relay::common
