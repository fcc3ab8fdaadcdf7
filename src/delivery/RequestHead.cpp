// The request head of one delivery attempt, as text.
#include "RequestHead.hpp"

#include <array>
#include <charconv>
#include <string_view>
#include <system_error>

#include "relay/common/HeaderNames.hpp"

namespace relay::delivery::detail {

using common::Url;

// "POST target HTTP/1.1", Host, the caller's headers (framing and routing ones are the
// client's business: a caller cannot override them) and Content-Length, each line CRLF-ended.
// False when a name or value would break the framing (config validation refuses those; this
// is the last line of defence against header injection).
bool serialize_head(const Url& url, const OutgoingRequest& request, std::string& out) {
  const auto one_line = [](std::string_view s) {
    return s.find_first_of("\r\n", 0, 3) == std::string_view::npos;
  };
  out.clear();
  out += "POST ";
  out += url.target;
  out += " HTTP/1.1\r\nHost: ";
  out += url.host_header();
  out += "\r\n";
  for (const auto& [name, value] : request.headers) {
    if (common::is_framing_header(name)) continue;
    if (name.empty() || !one_line(name) || !one_line(value) ||
        name.find(':') != std::string::npos) {
      return false;
    }
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  std::array<char, 24> digits{};
  const auto [end, ec] = std::to_chars(digits.begin(), digits.end(), request.body.size());
  out += "Content-Length: ";
  out.append(digits.data(), end);
  out += "\r\n\r\n";
  return ec == std::errc();
}

}  // namespace relay::delivery::detail
