#include "TlsContexts.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/ssl.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace relay::delivery {

namespace ssl = boost::asio::ssl;

namespace {

// OpenSSL 3.0 fills a certificate's extension cache (key identifiers, purposes) on first use,
// under the certificate's lock but checked without it, so two I/O threads verifying their first
// chains against the same trust anchor race on it (ThreadSanitizer caught it in
// HttpClientTest.ConcurrentSendsFromManyThreads). Filling every trust anchor's cache here, while
// the context is not yet shared, leaves nothing for the handshakes to write.
void fill_extension_caches(SSL_CTX* ctx) {
  STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
  for (int i = 0; i < sk_X509_OBJECT_num(objects); ++i) {
    if (X509* cert = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objects, i)); cert != nullptr) {
      X509_check_purpose(cert, -1, 0);
    }
  }
}

}  // namespace

TlsContexts::TlsContexts(std::string default_ca_file)
    : default_ca_file_(std::move(default_ca_file)) {
  std::string error;
  default_ = make(nullptr, error);
  if (!default_) throw std::runtime_error("delivery: " + error);
}

std::unique_ptr<ssl::context> TlsContexts::make(const std::string* extra, std::string& error) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_verify_mode(ssl::verify_peer);
  sessions_.attach(ctx->native_handle());
  boost::system::error_code ec;
  if (default_ca_file_.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(default_ca_file_, ec);
  }
  if (ec) {
    error = "cannot load CA file \"" + default_ca_file_ + "\": " + ec.message();
    return nullptr;
  }
  if (extra != nullptr) {
    // Added to the store the default trust filled: both vouch.
    ctx->load_verify_file(*extra, ec);
    if (ec) {
      error = "cannot load the webhook's ca_file \"" + *extra + "\": " + ec.message();
      return nullptr;
    }
  }
  fill_extension_caches(ctx->native_handle());
  return ctx;
}

ssl::context* TlsContexts::with_extra(const std::string& extra_ca_file, std::string& generation,
                                      std::string& error) {
  struct stat st {};
  if (::stat(extra_ca_file.c_str(), &st) != 0) {
    error = "cannot load the webhook's ca_file \"" + extra_ca_file + "\": " + std::strerror(errno);
    return nullptr;
  }
  const std::string stamp = std::to_string(st.st_size) + "." + std::to_string(st.st_mtim.tv_sec) +
                            "." + std::to_string(st.st_mtim.tv_nsec);
  std::lock_guard lock(mutex_);
  auto& entry = extra_[extra_ca_file];
  if (!entry.context || entry.stamp != stamp) {
    auto ctx = make(&extra_ca_file, error);
    if (!ctx) return nullptr;
    if (entry.context) retired_.push_back(std::move(entry.context));
    entry.context = std::move(ctx);
    entry.stamp = stamp;
  }
  generation = extra_ca_file + "@" + entry.stamp;
  return entry.context.get();
}

}  // namespace relay::delivery
