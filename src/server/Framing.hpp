#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "relay/server/HttpServer.hpp"

/// What the transport decides from a request's header before its body, with no dependency
/// beyond the standard library, so the intake fuzzer compiles it straight from src/.
namespace relay::server {

/// Fills request.path and request.query (percent-decoded, '+' as space) from `target`.
void split_target(std::string_view target, Request& request);

/// RFC 9112 §6.3: a request whose Transfer-Encoding is not exactly `chunked` cannot be framed
/// safely (an `identity` or `gzip` body without a length would run into the next request).
/// `transfer_encoding` is every Transfer-Encoding field joined by ", ", or nullopt when there
/// is none. Returns the message of a 400 answer (then close), or nullopt when acceptable.
[[nodiscard]] std::optional<std::string> transfer_encoding_error(
    std::optional<std::string_view> transfer_encoding);

/// How many client connections the open-file limit leaves room for: raises the soft
/// RLIMIT_NOFILE to the hard one, then returns soft limit − `reserve` (descriptors for the
/// database, outbound deliveries, logs), at least 1; `wanted` is what the caller hopes for. The
/// listener never takes more, so accept() cannot fail with "Too many open files" and starve
/// the rest of the process.
[[nodiscard]] std::size_t connections_fitting_fd_limit(std::size_t wanted, std::size_t reserve);

}  // namespace relay::server
