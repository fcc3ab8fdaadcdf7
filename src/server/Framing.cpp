#include "Framing.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <limits>

#include "relay/common/Ascii.hpp"

namespace relay::server {

namespace {

std::string percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%' && i + 2 < in.size() && common::hex_value(in[i + 1]) >= 0 &&
               common::hex_value(in[i + 2]) >= 0) {
      out += static_cast<char>(common::hex_value(in[i + 1]) * 16 + common::hex_value(in[i + 2]));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

}  // namespace

void split_target(std::string_view target, Request& request) {
  const auto question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question == std::string_view::npos) return;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto part = query.substr(0, amp);
    if (!part.empty()) {
      const auto eq = part.find('=');
      request.query.emplace_back(
          percent_decode(part.substr(0, eq)),
          eq == std::string_view::npos ? std::string() : percent_decode(part.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
}

std::optional<std::string> transfer_encoding_error(
    std::optional<std::string_view> transfer_encoding) {
  if (!transfer_encoding) return std::nullopt;
  // Only one coding is decoded here: chunked, once. "gzip, chunked" would be framed correctly
  // but the body would stay compressed; "chunked, chunked" is malformed (RFC 9112 §7).
  std::string_view rest = *transfer_encoding;
  int codings = 0;
  bool only_chunked = true;
  while (true) {
    const auto comma = rest.find(',');
    const auto coding = common::trim_ows(rest.substr(0, comma));
    if (!coding.empty()) {
      ++codings;
      only_chunked = only_chunked && common::iequals(coding, "chunked");
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (codings == 1 && only_chunked) return std::nullopt;
  return std::string(
      "unsupported Transfer-Encoding (only \"chunked\" is accepted, RFC 9112 section 6.3)");
}

namespace {
// The soft limit asked for when the hard one is unlimited (above fs.nr_open setrlimit fails).
constexpr rlim_t kSoftLimitWithoutHard = 65536;
}  // namespace

std::size_t connections_fitting_fd_limit(std::size_t wanted, std::size_t reserve) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return wanted;
  const rlim_t needed = static_cast<rlim_t>(wanted + reserve);
  // Up to the hard limit, not only to `needed`: the delivery pool keeps idle connections per
  // origin, which the reserve does not count (thousands of origins kept warm would otherwise
  // run into EMFILE). Nothing in relayd uses select(), so a high soft limit costs nothing.
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur =
        limit.rlim_max == RLIM_INFINITY ? std::max(needed, kSoftLimitWithoutHard) : limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur == RLIM_INFINITY) return std::numeric_limits<std::size_t>::max();
  const auto soft = static_cast<std::size_t>(limit.rlim_cur);
  return soft > reserve + 1 ? soft - reserve : 1;
}

}  // namespace relay::server
