#include "TlsSessionCache.hpp"

#include <ctime>

namespace relay::delivery {
namespace {

// Where a context finds its cache and a connection its key (OpenSSL ex_data slots, allocated
// once per process).
int ctx_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
int ssl_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

bool usable(SSL_SESSION* s) {
  if (SSL_SESSION_is_resumable(s) != 1) return false;
  const long age = static_cast<long>(std::time(nullptr)) - SSL_SESSION_get_time(s);
  return age < SSL_SESSION_get_timeout(s);
}

}  // namespace

void TlsSessionCache::attach(SSL_CTX* ctx) {
  // CLIENT: OpenSSL calls the new-session callback for client connections (also for each TLS
  // 1.3 ticket, which arrives after the handshake); NO_INTERNAL_STORE: this class is the store.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_set_ex_data(ctx, ctx_index(), this);
  SSL_CTX_sess_set_new_cb(ctx, &TlsSessionCache::on_new_session);
}

void TlsSessionCache::prepare(SSL* ssl, const std::string* key) {
  SSL_set_ex_data(ssl, ssl_index(), const_cast<std::string*>(key));
  if (auto session = take(*key)) SSL_set_session(ssl, session.get());  // takes its own ref
}

void TlsSessionCache::after_handshake(SSL* ssl) {
  if (SSL_session_reused(ssl) != 1 || SSL_version(ssl) >= TLS1_3_VERSION) return;
  const auto* key = static_cast<const std::string*>(SSL_get_ex_data(ssl, ssl_index()));
  if (key == nullptr) return;
  // A copy, for the reason given in on_new_session.
  SSL_SESSION* current = SSL_get_session(ssl);
  if (current == nullptr) return;
  if (SSL_SESSION* s = SSL_SESSION_dup(current)) store(*key, SessionPtr(s));
}

int TlsSessionCache::on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* cache =
      static_cast<TlsSessionCache*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index()));
  const auto* key = static_cast<const std::string*>(SSL_get_ex_data(ssl, ssl_index()));
  if (cache == nullptr || key == nullptr) return 0;
  // A copy, not `session` itself: OpenSSL marks a connection's current session not resumable
  // when the connection is freed without a close_notify (ours are simply closed), and with TLS
  // 1.3 that current session is the last ticket received.
  if (SSL_SESSION* copy = SSL_SESSION_dup(session)) cache->store(*key, SessionPtr(copy));
  return 0;  // OpenSSL keeps (and frees) `session`
}

void TlsSessionCache::store(const std::string& key, SessionPtr session) {
  SessionPtr evicted;  // freed outside the lock
  std::deque<SessionPtr> evicted_slot;
  std::lock_guard lock(mutex_);
  auto it = slots_.find(key);
  if (it == slots_.end()) {
    if (slots_.size() >= max_keys_ && !lru_.empty()) {
      auto old = slots_.find(lru_.back());
      evicted_slot = std::move(old->second.sessions);
      slots_.erase(old);
      lru_.pop_back();
    }
    lru_.push_front(key);
    it = slots_.emplace(key, Slot{lru_.begin(), {}}).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  auto& sessions = it->second.sessions;
  if (sessions.size() >= kPerKey) {
    evicted = std::move(sessions.front());
    sessions.pop_front();
  }
  sessions.push_back(std::move(session));
}

TlsSessionCache::SessionPtr TlsSessionCache::take(const std::string& key) {
  std::deque<SessionPtr> stale;  // freed outside the lock
  SessionPtr found;
  std::lock_guard lock(mutex_);
  auto it = slots_.find(key);
  if (it == slots_.end()) return nullptr;
  auto& sessions = it->second.sessions;
  while (!sessions.empty() && !found) {
    SessionPtr s = std::move(sessions.back());  // newest first: the least likely to be expired
    sessions.pop_back();
    if (usable(s.get())) {
      found = std::move(s);
    } else {
      stale.push_back(std::move(s));
    }
  }
  if (sessions.empty()) {
    lru_.erase(it->second.lru);
    slots_.erase(it);
  }
  return found;
}

std::size_t TlsSessionCache::size() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [key, slot] : slots_) n += slot.sessions.size();
  return n;
}

}  // namespace relay::delivery
