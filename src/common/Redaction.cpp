#include "relay/common/Redaction.hpp"

#include <algorithm>
#include <array>

#include "relay/common/Ascii.hpp"
#include "relay/common/HeaderNames.hpp"

namespace relay::common {

bool looks_secret(std::string_view name) noexcept {
  // "auth" covers authorization and X-Auth; "pass" covers password and X-Api-Pass; "key"
  // covers api_key and X-Api-Key. Over-matching hides a harmless value, under-matching leaks.
  static constexpr std::array<std::string_view, 9> kWords = {
      "auth", "cookie", "token", "key", "secret", "pass", "credential", "session", "access"};
  // Asked for every response header of every attempt: the name is lowered once and searched
  // with find() rather than compared case-blind at every offset for every word.
  std::array<char, 64> buf{};
  if (name.size() > buf.size()) {
    return std::any_of(kWords.begin(), kWords.end(),
                       [&](std::string_view word) { return icontains(name, word); });
  }
  std::transform(name.begin(), name.end(), buf.begin(), [](char c) { return to_lower(c); });
  const std::string_view lower(buf.data(), name.size());
  return std::any_of(kWords.begin(), kWords.end(), [&](std::string_view word) {
    return lower.find(word) != std::string_view::npos;
  });
}

bool request_header_shown(std::string_view name) noexcept {
  for (const auto own : kBuilderHeaders) {
    if (iequals(name, own)) return true;
  }
  return is_relay_prefixed_header(name);
}

std::string redact_url(std::string_view url) {
  std::string out;
  out.reserve(url.size() + 16);
  const auto scheme_end = url.find("://");
  std::string_view rest = url;
  if (scheme_end != std::string_view::npos) {
    out.append(url.substr(0, scheme_end + 3));
    rest = url.substr(scheme_end + 3);
    const auto authority_end = rest.find_first_of("/?#");
    const auto authority = rest.substr(0, authority_end);
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
      out.append(kRedacted).append(1, '@');
      rest.remove_prefix(at + 1);
    }
  }
  const auto question = rest.find('?');
  if (question == std::string_view::npos) {
    out.append(rest);
    return out;
  }
  out.append(rest.substr(0, question + 1));
  std::string_view query = rest.substr(question + 1);
  std::string_view fragment;
  if (const auto hash = query.find('#'); hash != std::string_view::npos) {
    fragment = query.substr(hash);
    query = query.substr(0, hash);
  }
  bool first = true;
  while (true) {
    const auto amp = query.find('&');
    const auto part = query.substr(0, amp);
    if (!first) out.append(1, '&');
    first = false;
    if (const auto eq = part.find('='); eq != std::string_view::npos) {
      out.append(part.substr(0, eq + 1)).append(kRedacted);
    } else if (!part.empty()) {
      out.append(kRedacted);  // "?s3cr3t": a part without a name is all value
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  out.append(fragment);
  return out;
}

std::string redact_dsn(std::string_view dsn) {
  if (dsn.starts_with("postgresql://") || dsn.starts_with("postgres://")) return redact_url(dsn);
  // libpq's grammar: key = value pairs separated by whitespace; a value is either a run of
  // non-space characters or single-quoted with backslash escapes.
  std::string out;
  std::size_t i = 0;
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (i < dsn.size()) {
    while (i < dsn.size() && is_space(dsn[i])) out += dsn[i++];
    const auto key_start = i;
    while (i < dsn.size() && dsn[i] != '=' && !is_space(dsn[i])) ++i;
    const auto key = dsn.substr(key_start, i - key_start);
    out += key;
    while (i < dsn.size() && is_space(dsn[i])) out += dsn[i++];
    if (i >= dsn.size() || dsn[i] != '=') continue;
    out += dsn[i++];
    while (i < dsn.size() && is_space(dsn[i])) out += dsn[i++];
    const auto value_start = i;
    if (i < dsn.size() && dsn[i] == '\'') {
      ++i;
      while (i < dsn.size() && dsn[i] != '\'') i += dsn[i] == '\\' ? 2 : 1;
      i = std::min(i + 1, dsn.size());
    } else {
      while (i < dsn.size() && !is_space(dsn[i])) ++i;
    }
    if (looks_secret(key)) {
      out += kRedacted;
    } else {
      out += dsn.substr(value_start, i - value_start);
    }
  }
  return out;
}

}  // namespace relay::common
