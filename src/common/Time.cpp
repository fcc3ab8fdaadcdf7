#include "relay/common/Time.hpp"

#include <chrono>
#include <cstdio>

namespace relay::common {

TimePoint now_ms() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(Clock::now());
}

namespace {

std::string format(TimePoint t, bool with_millis) {
  using namespace std::chrono;
  // Several stamps go into every attempt record and log line: written digit by digit from the
  // civil calendar, not through gmtime_r and snprintf (which took ~1.5% of a drain's CPU).
  const auto ms_since_epoch = t.time_since_epoch().count();
  auto secs = ms_since_epoch / 1000;
  auto millis = static_cast<int>(ms_since_epoch % 1000);
  if (millis < 0) {
    millis += 1000;
    --secs;
  }
  const sys_seconds at{seconds{secs}};
  const auto day = floor<days>(at);
  const year_month_day ymd{day};
  const hh_mm_ss hms{at - day};
  const int y = static_cast<int>(ymd.year());
  if (y < 0 || y > 9999) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", y,
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    std::string out = buf;
    if (with_millis) {
      std::snprintf(buf, sizeof buf, ".%03d", millis);
      out += buf;
    }
    return out + "Z";
  }
  std::string out(with_millis ? 24 : 20, '0');
  const auto put = [&out](std::size_t pos, int value, int width) {
    for (int i = width - 1; i >= 0; --i) {
      out[pos + static_cast<std::size_t>(i)] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
  };
  put(0, y, 4);
  out[4] = '-';
  put(5, static_cast<int>(static_cast<unsigned>(ymd.month())), 2);
  out[7] = '-';
  put(8, static_cast<int>(static_cast<unsigned>(ymd.day())), 2);
  out[10] = 'T';
  put(11, static_cast<int>(hms.hours().count()), 2);
  out[13] = ':';
  put(14, static_cast<int>(hms.minutes().count()), 2);
  out[16] = ':';
  put(17, static_cast<int>(hms.seconds().count()), 2);
  if (with_millis) {
    out[19] = '.';
    put(20, millis, 3);
  }
  out.back() = 'Z';
  return out;
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

}  // namespace

std::string format_rfc3339_ms(TimePoint t) {
  return format(t, true);
}

std::string format_rfc3339_s(TimePoint t) {
  return format(t, false);
}

std::optional<TimePoint> parse_rfc3339(std::string_view s) {
  int y, mo, d, h, mi, se, ms = 0;
  if (s.size() < 20 || !digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || s[10] != 'T' || !digits(s, 11, 2, h) || s[13] != ':' ||
      !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, se)) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  if (s[pos] == '.') {
    if (!digits(s, pos + 1, 3, ms)) return std::nullopt;
    pos += 4;
  }
  if (pos + 1 != s.size() || s[pos] != 'Z') return std::nullopt;
  using namespace std::chrono;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || se > 60) return std::nullopt;
  const auto tp = sys_days{ymd} + hours{h} + minutes{mi} + seconds{se} + milliseconds{ms};
  return TimePoint{duration_cast<milliseconds>(tp.time_since_epoch())};
}

}  // namespace relay::common
