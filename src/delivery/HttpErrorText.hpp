#pragma once

// Private to the delivery module: the texts of HttpResult::error (documented in
// relay/delivery/HttpClient.hpp), kept apart from the exchange so that HttpClient.cpp holds only
// the I/O. Error codes and OpenSSL's SSL handle only: no Beast streams, no Asio SSL stream.

#include <openssl/types.h>

#include <chrono>
#include <string>

#include <boost/system/error_code.hpp>

#include "relay/common/Url.hpp"
#include "relay/delivery/HttpClient.hpp"

namespace relay::delivery::detail {

/// The network phase a failure or a timeout happened in.
enum class Phase { kDns, kConnect, kTls, kWrite, kRead };

/// "dns", "connect", "tls", "write" or "read".
const char* phase_name(Phase p);
/// "timeout after <N> ms (during <phase>)".
std::string timeout_message(std::chrono::milliseconds budget, Phase p);
/// "dns: <resolver message>".
std::string dns_message(const boost::system::error_code& ec);
/// "tls: …": verify failures and host-name mismatches named for operators (`ssl` may be null).
std::string tls_message(const boost::system::error_code& ec, SSL* ssl, const common::Url& url);
/// "read: …": connection closed, header too large, invalid response.
std::string read_message(const boost::system::error_code& ec, const ClientOptions& options);

}  // namespace relay::delivery::detail
