#pragma once

// Private to the delivery module (OpenSSL types); used by TlsContexts.cpp and HttpClient.cpp.

#include <openssl/ssl.h>

#include <cstddef>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace relay::delivery {

/// Client TLS sessions kept for resumption, per connection-pool key (origin + SSRF policy +
/// trust generation), so a reconnect to an origin costs an abbreviated handshake instead of a
/// full one (no certificate chain, no signature). A session is only ever offered to the key it
/// was made under: a session carries the verification of ONE host's certificate, and a server
/// that shares ticket keys between names would otherwise accept it for another host.
///
/// TLS 1.3 tickets are used once (RFC 8446 C.4): taking one removes it; the server sends fresh
/// ones on every connection, which `on_new_session` stores. A TLS 1.2 session (session id or
/// ticket) is put back after it resumed. Bounded: `kPerKey` sessions per key, `max_keys` keys
/// (the least recently used key goes first). Thread-safe.
class TlsSessionCache {
 public:
  static constexpr std::size_t kPerKey = 4;

  explicit TlsSessionCache(std::size_t max_keys = 10000) : max_keys_(max_keys) {}

  /// Configures a client context: OpenSSL hands every new session to this cache (its own
  /// internal store stays off). The cache must outlive the context.
  void attach(SSL_CTX* ctx);

  /// Before the handshake: tags `ssl` with `key` (which must outlive `ssl`), so the sessions
  /// it receives are stored under it, and offers a cached session for `key` if there is one.
  void prepare(SSL* ssl, const std::string* key);

  /// After a successful handshake: a resumed TLS 1.2 session goes back into the cache.
  void after_handshake(SSL* ssl);

  [[nodiscard]] std::size_t size() const;

 private:
  struct FreeSession {
    void operator()(SSL_SESSION* s) const noexcept { SSL_SESSION_free(s); }
  };
  using SessionPtr = std::unique_ptr<SSL_SESSION, FreeSession>;
  struct Slot {
    std::list<std::string>::iterator lru;
    std::deque<SessionPtr> sessions;  // newest at the back
  };

  static int on_new_session(SSL* ssl, SSL_SESSION* session);
  void store(const std::string& key, SessionPtr session);
  SessionPtr take(const std::string& key);

  const std::size_t max_keys_;
  mutable std::mutex mutex_;
  std::list<std::string> lru_;                   // most recently used at the front; by mutex_
  std::unordered_map<std::string, Slot> slots_;  // by mutex_
};

}  // namespace relay::delivery
