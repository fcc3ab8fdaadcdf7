// The texts of HttpResult::error for DNS, TLS and read failures and for timeouts.
#include "HttpErrorText.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/http/error.hpp>

namespace relay::delivery::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using boost::system::error_code;
using common::Url;

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kDns:
      return "dns";
    case Phase::kConnect:
      return "connect";
    case Phase::kTls:
      return "tls";
    case Phase::kWrite:
      return "write";
    case Phase::kRead:
      return "read";
  }
  return "?";
}

std::string timeout_message(std::chrono::milliseconds budget, Phase p) {
  return "timeout after " + std::to_string(budget.count()) + " ms (during " + phase_name(p) + ")";
}

std::string dns_message(const error_code& ec) {
  std::string m = ec.message();
  // Asio says "Host not found (authoritative)"; operators want the gist.
  if (const auto pos = m.find(" (authoritative)"); pos != std::string::npos) m.erase(pos);
  return "dns: " + m;
}

std::string tls_message(const error_code& ec, SSL* ssl, const Url& url) {
  if (ec.category() == net::error::get_ssl_category()) {
    const auto reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && ssl != nullptr) {
      const long v = SSL_get_verify_result(ssl);
      if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        return "tls: host name mismatch (certificate is not valid for " + url.host + ")";
      }
      return std::string("tls: certificate verify failed (") + X509_verify_cert_error_string(v) +
             ")";
    }
    if (const char* text = ERR_reason_error_string(static_cast<unsigned long>(ec.value()))) {
      return std::string("tls: ") + text;
    }
  }
  return "tls: " + ec.message();
}

std::string read_message(const error_code& ec, const ClientOptions& options) {
  if (ec == http::error::end_of_stream) return "read: connection closed before a response";
  if (ec == http::error::partial_message) return "read: connection closed in the response header";
  if (ec == http::error::header_limit) {
    return "read: response header too large (limit " + std::to_string(options.max_response_header) +
           " bytes)";
  }
  if (ec.category() == beast::http::make_error_code(http::error::bad_version).category()) {
    return "read: invalid response (" + ec.message() + ")";
  }
  if (ec == ssl::error::stream_truncated) return "read: connection closed (TLS stream truncated)";
  return "read: " + ec.message();
}

}  // namespace relay::delivery::detail
