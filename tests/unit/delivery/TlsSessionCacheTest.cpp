// The client's TLS session cache (issue 20): what OpenSSL hands over is kept per pool key, only
// that key's connections are offered it, TLS 1.3 tickets are used once, and it stays bounded.
// Sessions are made by hand, or by real handshakes between two SSL objects in memory (TLS 1.3
// tickets, TLS 1.2 sessions); the daemon end to end is integration_tls_resumption.
#include "TlsSessionCache.hpp"

#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <map>
#include <memory>
#include <string>

#include "TestCerts.hpp"

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

// A server and a client in memory (a BIO pair): full TLS handshakes, tickets included.
class TlsSessionCacheHandshakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static const test::TestCerts certs;
    std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
        BIO_new_mem_buf(certs.server().cert_pem.data(), -1), &BIO_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
        BIO_new_mem_buf(certs.server().key_pem.data(), -1), &BIO_free);
    X509* cert = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr);
    EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
    ASSERT_NE(cert, nullptr);
    ASSERT_NE(key, nullptr);
    ASSERT_EQ(SSL_CTX_use_certificate(server_.get(), cert), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey(server_.get(), key), 1);
    X509_free(cert);
    EVP_PKEY_free(key);
    cache_.attach(client_.get());
  }

  // One connection under `key`: true when the client's handshake resumed a session.
  bool connect(const std::string& key) {
    std::unique_ptr<SSL, FreeSsl> server(SSL_new(server_.get()));
    std::unique_ptr<SSL, FreeSsl> client(SSL_new(client_.get()));
    BIO* server_bio = nullptr;
    BIO* client_bio = nullptr;
    BIO_new_bio_pair(&server_bio, 0, &client_bio, 0);
    SSL_set_bio(server.get(), server_bio, server_bio);
    SSL_set_bio(client.get(), client_bio, client_bio);
    SSL_set_accept_state(server.get());
    SSL_set_connect_state(client.get());
    cache_.prepare(client.get(), &key);
    bool client_done = false;
    bool server_done = false;
    for (int i = 0; i < 100 && !(client_done && server_done); ++i) {
      if (!client_done) client_done = SSL_do_handshake(client.get()) == 1;
      if (!server_done) server_done = SSL_do_handshake(server.get()) == 1;
    }
    EXPECT_TRUE(client_done && server_done);
    cache_.after_handshake(client.get());
    // Application data from the server; reading it makes the client take in the TLS 1.3
    // tickets sent before it (as a delivery's response read does).
    char byte = 'x';
    EXPECT_EQ(SSL_write(server.get(), &byte, 1), 1);
    EXPECT_EQ(SSL_read(client.get(), &byte, 1), 1);
    return SSL_session_reused(client.get()) == 1;
  }

  std::unique_ptr<SSL_CTX, FreeCtx> server_{SSL_CTX_new(TLS_server_method())};
  std::unique_ptr<SSL_CTX, FreeCtx> client_{SSL_CTX_new(TLS_client_method())};
  TlsSessionCache cache_;
};

TEST_F(TlsSessionCacheHandshakeTest, Tls13TicketsResumeEveryReconnect) {
  EXPECT_FALSE(connect("a"));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(connect("a")) << "reconnect " << i;
  EXPECT_FALSE(connect("b")) << "a's session went to b";
  EXPECT_TRUE(connect("b"));
}

TEST_F(TlsSessionCacheHandshakeTest, Tls12SessionsGoBackAfterResuming) {
  SSL_CTX_set_max_proto_version(server_.get(), TLS1_2_VERSION);
  EXPECT_FALSE(connect("a"));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(connect("a")) << "reconnect " << i;
  EXPECT_FALSE(connect("b"));
  EXPECT_EQ(cache_.size(), 2U) << "one TLS 1.2 session per key, put back after each use";
}

}  // namespace
}  // namespace relay::delivery
