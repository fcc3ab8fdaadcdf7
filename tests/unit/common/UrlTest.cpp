#include "relay/common/Url.hpp"

#include <gtest/gtest.h>

namespace relay::common {
namespace {

TEST(Url, HttpsDefaults) {
  const auto u = parse_url("https://crm.example.com/hooks/relay");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "crm.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/hooks/relay");
  EXPECT_FALSE(u->host_is_ip);
  EXPECT_TRUE(u->is_https());
  EXPECT_EQ(u->host_header(), "crm.example.com");
  EXPECT_EQ(u->origin(), "https://crm.example.com:443");
}

TEST(Url, HttpPortQueryFragmentCase) {
  const auto u = parse_url("HTTP://Example.COM:8080/a/b?x=1&y=%20#frag");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, "http");
  EXPECT_EQ(u->host, "example.com");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/a/b?x=1&y=%20");
  EXPECT_FALSE(u->is_https());
  EXPECT_EQ(u->host_header(), "example.com:8080");
}

TEST(Url, EmptyPathAndQueryOnly) {
  EXPECT_EQ(parse_url("https://h")->target, "/");
  EXPECT_EQ(parse_url("https://h#x")->target, "/");
  EXPECT_EQ(parse_url("https://h?q=1")->target, "/?q=1");
  EXPECT_EQ(parse_url("http://h:")->port, 80);  // empty port = default (RFC 3986)
  // Leading zeros, as check-config accepts them (found by url_fuzz).
  EXPECT_EQ(parse_url("https://h:000443/")->port, 443);
  EXPECT_EQ(parse_url("https://h:0000000000000000008080")->port, 8080);
  EXPECT_FALSE(parse_url("https://h:0000000000000000065536"));
  EXPECT_FALSE(parse_url("https://h:99999999999999999999"));
  EXPECT_FALSE(parse_url("https://h:00000"));
}

TEST(Url, Ipv4AndIpv6Literals) {
  const auto v4 = parse_url("https://127.0.0.1:8443/x");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->host_is_ip);
  EXPECT_FALSE(v4->host_is_ipv6);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8443);

  const auto v6 = parse_url("https://[::1]:8443/x");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->host_is_ip);
  EXPECT_TRUE(v6->host_is_ipv6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8443);
  EXPECT_EQ(v6->host_header(), "[::1]:8443");
  EXPECT_EQ(v6->origin(), "https://[::1]:8443");

  const auto v6d = parse_url("https://[2001:DB8::1]");
  ASSERT_TRUE(v6d);
  EXPECT_EQ(v6d->host, "2001:db8::1");
  EXPECT_EQ(v6d->port, 443);
  EXPECT_EQ(v6d->host_header(), "[2001:db8::1]");
}

TEST(Url, Rejects) {
  for (const char* bad :
       {"", "crm.example.com/hook", "ftp://h/", "https://", "https:///path", "https://user:pw@h/",
        "https://h:0/", "https://h:65536/", "https://h:12a/", "https://h:123456/", "https://[::1/",
        "https://[::1]x/", "https://[zz::1]/", "https://h o/", "https://h/a b", "https://h/\n",
        "https://-h/", "https://h%41/", "https://[fe80::1%25eth0]/"}) {
    std::string error;
    EXPECT_FALSE(parse_url(bad, &error).has_value()) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
  std::string error;
  parse_url("ftp://h/", &error);
  EXPECT_EQ(error, "unsupported scheme \"ftp\"");
}

// check-config words its messages from the code and applies its policy to these flags.
TEST(Url, ReportsWhichRuleFailedAndHowItWasWritten) {
  const auto code_of = [](std::string_view text) {
    UrlError code{};
    std::string error;
    EXPECT_FALSE(parse_url(text, &error, &code).has_value()) << text;
    EXPECT_FALSE(error.empty()) << text;
    return code;
  };
  EXPECT_EQ(code_of("https://h/a b"), UrlError::kControlCharacter);
  EXPECT_EQ(code_of("/hooks"), UrlError::kNotAbsolute);
  EXPECT_EQ(code_of("ftp://h/"), UrlError::kUnsupportedScheme);
  EXPECT_EQ(code_of("https://u:p@h/"), UrlError::kUserInfo);
  EXPECT_EQ(code_of("https:///x"), UrlError::kMissingHost);
  EXPECT_EQ(code_of("https://:443/"), UrlError::kMissingHost);
  EXPECT_EQ(code_of("https://[::1/"), UrlError::kUnterminatedIpv6);
  EXPECT_EQ(code_of("https://[::1]x/"), UrlError::kTextAfterIpv6);
  EXPECT_EQ(code_of("https://[fe80::1%25eth0]/"), UrlError::kInvalidIpv6);
  EXPECT_EQ(code_of("https://::1/"), UrlError::kUnbracketedIpv6);
  EXPECT_EQ(code_of("https://-h/"), UrlError::kInvalidHost);
  EXPECT_EQ(code_of("https://h:0/"), UrlError::kInvalidPort);

  const auto plain = parse_url("https://h/x?y");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->had_fragment);
  EXPECT_FALSE(plain->empty_port);
  EXPECT_TRUE(parse_url("https://h/x#")->had_fragment);
  EXPECT_TRUE(parse_url("https://h:/x")->empty_port);
  EXPECT_FALSE(parse_url("https://h:443/x")->empty_port);
}

}  // namespace
}  // namespace relay::common
