// The client's TLS session cache (issue 20): what OpenSSL hands over is kept per pool key, only
// that key's connections are offered it, TLS 1.3 tickets are used once, and it stays bounded.
// Sessions here are made by hand; the handshake side is in integration_tls_resumption.
#include "TlsSessionCache.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

namespace relay::delivery {
namespace {

struct FreeCtx {
  void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
struct FreeSsl {
  void operator()(SSL* s) const noexcept { SSL_free(s); }
};

class TlsSessionCacheTest : public ::testing::Test {
 protected:
  explicit TlsSessionCacheTest(std::size_t max_keys = 10000) : cache_(max_keys) {
    cache_.attach(ctx_.get());
  }

  // A resumable session with a recognizable id, as if a server had just sent it.
  static SSL_SESSION* make_session(unsigned char id) {
    SSL_SESSION* s = SSL_SESSION_new();
    const unsigned char bytes[1] = {id};
    SSL_SESSION_set1_id(s, bytes, 1);
    SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION);
    const unsigned char key[48] = {1};
    SSL_SESSION_set1_master_key(s, key, sizeof key);
    SSL_SESSION_set_timeout(s, 3600);
    return s;
  }

  // OpenSSL's new-session callback on the connection under `key`, as when a ticket arrives.
  // One connection per key, made on first use (prepare() would take a cached session).
  void receive(const std::string& key, unsigned char id) {
    auto& conn = connections_[key];
    if (!conn.ssl) {
      conn.key = key;
      conn.ssl.reset(SSL_new(ctx_.get()));
      cache_.prepare(conn.ssl.get(), &conn.key);
    }
    SSL_SESSION* s = make_session(id);
    const int kept = SSL_CTX_sess_get_new_cb(ctx_.get())(conn.ssl.get(), s);
    if (kept == 0) SSL_SESSION_free(s);
  }

  // The id of the session a new connection under `key` would offer; -1 for none.
  int offered(const std::string& key) {
    std::unique_ptr<SSL, FreeSsl> ssl(SSL_new(ctx_.get()));
    cache_.prepare(ssl.get(), &key);
    SSL_SESSION* s = SSL_get_session(ssl.get());
    if (s == nullptr) return -1;
    unsigned int len = 0;
    const unsigned char* id = SSL_SESSION_get_id(s, &len);
    return len == 1 ? id[0] : -2;
  }

  struct Connection {
    std::string key;
    std::unique_ptr<SSL, FreeSsl> ssl;
  };

  std::unique_ptr<SSL_CTX, FreeCtx> ctx_{SSL_CTX_new(TLS_client_method())};
  TlsSessionCache cache_;
  std::map<std::string, Connection> connections_;  // after cache_: freed before it
};

TEST_F(TlsSessionCacheTest, OffersOnlyTheSameKeysSessionsEachOnce) {
  receive("https://a.example:443|any", 1);
  receive("https://a.example:443|any", 2);
  EXPECT_EQ(offered("https://b.example:443|any"), -1) << "a's session offered to b";
  EXPECT_EQ(offered("https://a.example:443|public"), -1) << "crossed the SSRF policy";
  EXPECT_EQ(offered("https://a.example:443|any"), 2) << "newest first";
  EXPECT_EQ(offered("https://a.example:443|any"), 1);
  EXPECT_EQ(offered("https://a.example:443|any"), -1) << "a ticket is used once";
  EXPECT_EQ(cache_.size(), 0U);
}

TEST_F(TlsSessionCacheTest, KeepsAFewSessionsPerKey) {
  for (unsigned char id = 1; id <= 10; ++id) receive("k", id);
  EXPECT_EQ(cache_.size(), TlsSessionCache::kPerKey);
  EXPECT_EQ(offered("k"), 10);
}

TEST_F(TlsSessionCacheTest, ExpiredSessionsAreNotOffered) {
  std::unique_ptr<SSL, FreeSsl> ssl(SSL_new(ctx_.get()));
  const std::string key = "k";
  cache_.prepare(ssl.get(), &key);
  SSL_SESSION* s = make_session(7);
  SSL_SESSION_set_time(s, SSL_SESSION_get_time(s) - 7200);  // timeout 3600
  if (SSL_CTX_sess_get_new_cb(ctx_.get())(ssl.get(), s) == 0) SSL_SESSION_free(s);
  EXPECT_EQ(offered("k"), -1);
}

class TlsSessionCacheBoundTest : public TlsSessionCacheTest {
 protected:
  TlsSessionCacheBoundTest() : TlsSessionCacheTest(2) {}
};

TEST_F(TlsSessionCacheBoundTest, TheLeastRecentlyUsedKeyGoesFirst) {
  receive("a", 1);
  receive("b", 2);
  receive("a", 3);  // a is now the most recently used
  receive("c", 4);  // evicts b
  EXPECT_EQ(offered("b"), -1);
  EXPECT_EQ(offered("c"), 4);
  EXPECT_EQ(offered("a"), 3);
}

}  // namespace
}  // namespace relay::delivery
