// RawServer: a small blocking TCP server for the hostile-endpoint tests (TLS through OpenSSL
// directly when asked) that writes exactly the bytes a case needs, including the ones no real
// HTTP server library would produce (garbage, stalled handshakes, endless 1xx).
#pragma once

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "DaemonProcess.hpp"
#include "TestCerts.hpp"

namespace relay::testing::raw {

using relay::test::CertAndKey;

struct SslCtxFree {
  void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};

inline std::unique_ptr<SSL_CTX, SslCtxFree> make_server_context(const CertAndKey& cert) {
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_server_method()));
  std::unique_ptr<BIO, BioFree> cert_bio(
      BIO_new_mem_buf(cert.cert_pem.data(), static_cast<int>(cert.cert_pem.size())));
  std::unique_ptr<X509, X509Free> x509(
      PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  std::unique_ptr<BIO, BioFree> key_bio(
      BIO_new_mem_buf(cert.key_pem.data(), static_cast<int>(cert.key_pem.size())));
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!ctx || !x509 || !key || SSL_CTX_use_certificate(ctx.get(), x509.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1) {
    throw std::runtime_error("RawServer: cannot set up the TLS context");
  }
  return ctx;
}

/// One accepted connection of a RawServer; used by one handler thread only.
class RawConn {
 public:
  RawConn(int fd, SSL_CTX* ctx, const std::atomic<bool>& stop) : fd_(fd), ctx_(ctx), stop_(stop) {}
  ~RawConn() {
    if (ssl_ != nullptr) SSL_free(ssl_);  // no close_notify: a plain TCP close
  }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  /// Server side of the TLS handshake with the test CA's server certificate.
  bool tls_accept() {
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    return SSL_accept(ssl_) == 1;
  }

  /// Some bytes (decrypted after tls_accept); "" on close, error or the receive timeout.
  std::string read_some() {
    std::array<char, 16 * 1024> buf{};
    const int n = ssl_ != nullptr ? SSL_read(ssl_, buf.data(), static_cast<int>(buf.size()))
                                  : static_cast<int>(::recv(fd_, buf.data(), buf.size(), 0));
    return n > 0 ? std::string(buf.data(), static_cast<std::size_t>(n)) : std::string();
  }

  /// Reads one whole HTTP request (head, then a Content-Length body). False when it broke off.
  bool read_request() {
    std::string data;
    std::size_t head_end = std::string::npos;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      const auto more = read_some();
      if (more.empty() || data.size() > 1024 * 1024) return false;
      data += more;
    }
    std::string head = data.substr(0, head_end);
    std::transform(head.begin(), head.end(), head.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::size_t length = 0;
    if (const auto pos = head.find("\r\ncontent-length:"); pos != std::string::npos) {
      length = std::stoul(head.substr(pos + 17));
    }
    while (data.size() < head_end + 4 + length) {
      const auto more = read_some();
      if (more.empty()) return false;
      data += more;
    }
    return true;
  }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const int n = ssl_ != nullptr
                        ? SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()))
                        : static_cast<int>(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL));
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  /// Blocks until the peer closes the connection or the server stops (never answers).
  void wait_for_close() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 200) > 0) {
        std::array<char, 4096> buf{};
        if (::recv(fd_, buf.data(), buf.size(), 0) <= 0) return;  // discard whatever comes
      }
    }
  }

  [[nodiscard]] bool stopping() const { return stop_; }

 private:
  int fd_;
  SSL_CTX* ctx_;
  SSL* ssl_ = nullptr;
  const std::atomic<bool>& stop_;
};

/// A TCP server on 127.0.0.1 (ephemeral port) that runs `handler(conn, index)` on a thread of
/// its own for each accepted connection (index 0, 1, ... in accept order). The destructor stops
/// accepting, shuts every open connection down and joins all threads. Every socket has 20 s
/// send/receive timeouts as a backstop, so no thread can block forever.
class RawServer {
 public:
  using Handler = std::function<void(RawConn&, std::size_t)>;

  explicit RawServer(Handler handler, const CertAndKey* tls = nullptr)
      : handler_(std::move(handler)) {
    ::signal(SIGPIPE, SIG_IGN);  // SSL_write on a connection relayd dropped
    if (tls != nullptr) ctx_ = make_server_context(*tls);
    listen_fd_ = listen_on_loopback(64, port_, "RawServer");
    accept_thread_ = std::thread([this] { accept_loop(); });
  }

  ~RawServer() {
    stop_ = true;
    accept_thread_.join();
    {
      std::lock_guard lock(mutex_);
      for (int fd : live_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : threads_) t.join();
    ::close(listen_fd_);
  }
  RawServer(const RawServer&) = delete;
  RawServer& operator=(const RawServer&) = delete;

  [[nodiscard]] std::string url() const {
    return std::string(ctx_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + "/hook";
  }
  /// An https:// URL even without TLS here: for cases that break the handshake itself.
  [[nodiscard]] std::string https_url() const {
    return "https://127.0.0.1:" + std::to_string(port_) + "/hook";
  }
  [[nodiscard]] std::size_t accepted() const { return accepted_; }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      const timeval backstop{20, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &backstop, sizeof backstop);
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &backstop, sizeof backstop);
      const std::size_t index = accepted_++;
      std::lock_guard lock(mutex_);
      live_.insert(fd);
      threads_.emplace_back([this, fd, index] {
        {
          RawConn conn(fd, ctx_.get(), stop_);
          handler_(conn, index);
        }
        std::lock_guard lock(mutex_);
        live_.erase(fd);
        ::close(fd);
      });
    }
  }

  Handler handler_;
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> accepted_{0};
  std::mutex mutex_;
  std::set<int> live_;                // guarded by mutex_
  std::vector<std::thread> threads_;  // touched by the accept thread, then the destructor
  std::thread accept_thread_;
};

}  // namespace relay::testing::raw
