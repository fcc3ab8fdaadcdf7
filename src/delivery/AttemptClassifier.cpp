#include "relay/delivery/AttemptClassifier.hpp"

#include <algorithm>
#include <cstdint>

namespace relay::delivery {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) {
             return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
           };
           return lower(x) == lower(y);
         });
}

std::optional<std::string_view> find_header(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

// Length of the well-formed sequence starting at text[i], or 0 with `bad` = the length of its
// maximal ill-formed subpart (at least 1). Table 3-7 of the Unicode standard.
std::size_t utf8_sequence(std::string_view text, std::size_t i, std::size_t& bad) {
  const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(text[k]); };
  const std::uint8_t b0 = byte(i);
  std::size_t need = 0;
  std::uint8_t lo = 0x80;
  std::uint8_t hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    bad = 1;
    return 0;
  }
  for (std::size_t k = 1; k <= need; ++k) {
    const bool in_range = i + k < text.size() && byte(i + k) >= (k == 1 ? lo : 0x80) &&
                          byte(i + k) <= (k == 1 ? hi : 0xBF);
    if (!in_range) {
      bad = k;
      return 0;
    }
  }
  return need + 1;
}

}  // namespace

std::string valid_utf8(std::string_view text) {
  // ASCII is valid UTF-8 as it is (the usual case: a short JSON answer or none).
  if (std::all_of(text.begin(), text.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    return std::string(text);
  }
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      out += text[i++];
      continue;
    }
    std::size_t bad = 0;
    if (const auto n = utf8_sequence(text, i, bad); n > 0) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += bad;
    }
  }
  return out;
}

AttemptVerdict classify_attempt(const HttpResult& result, int attempt_number,
                                const std::vector<Duration>& schedule, common::TimePoint now) {
  AttemptVerdict verdict;
  verdict.error = result.error;
  // A body that broke off after the status line does not change the outcome (the status
  // counts), but the attempt row says why the body is short.
  if (verdict.error.empty() && !result.body_error.empty()) {
    verdict.error = "response body cut off: " + result.body_error;
  }
  std::optional<Duration> retry_after;
  if (result.status && (*result.status == 429 || *result.status == 503)) {
    if (const auto v = find_header(result.headers, "retry-after")) {
      retry_after = parse_retry_after(*v, now);
    }
  }
  const auto decision = decide_retry(attempt_number, result.status, retry_after, schedule);
  verdict.outcome = decision.kind;
  if (decision.kind == common::AttemptOutcome::kRetry)
    verdict.next_attempt_at = now + decision.delay;
  return verdict;
}

}  // namespace relay::delivery
