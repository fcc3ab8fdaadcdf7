// The web console's aggregates (SPEC §12): attempts by outcome and latency percentiles per
// webhook, and attempts per minute. All read a range of the attempts_started_at index, which
// covers (started_at, webhook_id, outcome, duration_ms) since schema v7, so neither the wide
// attempt rows (headers, bodies) nor the deliveries are read; the cost follows the attempts in
// the window, not the size of the log. attempt_summary gives a console page all of them from
// one pass.
#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "SqliteStore.hpp"
#include "relay/common/Time.hpp"

namespace relay::store {

using common::TimePoint;
using sqlite::StatementScope;

namespace {

void count_outcome(std::string_view outcome, std::int64_t& succeeded, std::int64_t& retry,
                   std::int64_t& failed) {
  // The CHECK constraint allows these three only: the first letter tells them apart.
  if (outcome.starts_with('s')) {
    ++succeeded;
  } else if (outcome.starts_with('r')) {
    ++retry;
  } else {
    ++failed;
  }
}

// One webhook's attempts in a window, durations kept for the percentiles.
struct Window {
  WebhookAttemptStats stats;
  std::vector<std::int64_t> durations;

  void add(std::string_view outcome, std::int64_t duration_ms) {
    ++stats.attempts;
    count_outcome(outcome, stats.succeeded, stats.retry, stats.failed);
    durations.push_back(duration_ms);
  }

  // Nearest rank (the smallest value with at least p% at or below it), found by selection in
  // linear time rather than by sorting a day of durations: rank 99 is looked for only among
  // the values above rank 50, which nth_element left after it.
  WebhookAttemptStats finish(const std::string& webhook_id) {
    stats.webhook_id = webhook_id;
    const auto n = durations.size();
    if (n == 0) return std::move(stats);
    const auto rank = [n](std::size_t percent) {
      return std::clamp<std::size_t>((n * percent + 99) / 100, 1, n) - 1;  // ceil(n*p/100)
    };
    const auto r50 = durations.begin() + static_cast<std::ptrdiff_t>(rank(50));
    const auto r99 = durations.begin() + static_cast<std::ptrdiff_t>(rank(99));
    std::nth_element(durations.begin(), r50, durations.end());
    stats.p50_ms = *r50;
    std::nth_element(r50, r99, durations.end());
    stats.p99_ms = *r99;
    return std::move(stats);
  }
};

struct WebhookWindows {
  Window whole;
  Window recent;
};

// std::less<> so that a row's webhook id is looked up as a string_view, without a copy.
using ByWebhook = std::map<std::string, WebhookWindows, std::less<>>;

WebhookWindows& windows_of(ByWebhook& by_webhook, std::string_view id) {
  if (const auto it = by_webhook.find(id); it != by_webhook.end()) return it->second;
  return by_webhook.emplace(std::string(id), WebhookWindows{}).first->second;
}

void add_to_minutes(std::vector<AttemptMinute>& out, std::string_view started_at,
                    std::string_view outcome) {
  const auto minute = started_at.substr(0, 16);  // "YYYY-MM-DDTHH:MM"
  if (out.empty() || out.back().minute != minute) {
    out.push_back(AttemptMinute{std::string(minute), 0, 0, 0});
  }
  auto& m = out.back();
  count_outcome(outcome, m.succeeded, m.retry, m.failed);
}

}  // namespace

std::vector<WebhookAttemptStats> SqliteStore::attempt_stats_since(TimePoint since) {
  return readers_.read("attempt statistics", [&](Connection& c) {
    StatementScope q(
        c.cached("SELECT webhook, outcome, duration_ms FROM attempts WHERE started_at >= ?1"));
    q->bind(1, common::format_rfc3339_ms(since));
    ByWebhook by_webhook;
    while (q->step()) {
      windows_of(by_webhook, q->text_view(0)).whole.add(q->text_view(1), q->int64(2));
    }
    std::vector<WebhookAttemptStats> out;
    for (auto& [id, w] : by_webhook) out.push_back(w.whole.finish(id));
    return out;
  });
}

std::vector<AttemptMinute> SqliteStore::attempts_per_minute(
    TimePoint since, const std::optional<std::string>& webhook_id) {
  return readers_.read("attempts per minute", [&](Connection& c) {
    // Index order is time order, so minutes are grouped here as they stream by (no temporary
    // b-tree for a GROUP BY). One webhook's attempts: the same range, the other webhooks'
    // entries passed over inside the index (no row read).
    StatementScope q(
        c.cached(webhook_id ? "SELECT started_at, outcome FROM attempts "
                              "WHERE started_at >= ?1 AND webhook = ?2 ORDER BY started_at"
                            : "SELECT started_at, outcome FROM attempts WHERE started_at >= ?1 "
                              "ORDER BY started_at"));
    q->bind(1, common::format_rfc3339_ms(since));
    if (webhook_id) q->bind(2, *webhook_id);
    std::vector<AttemptMinute> out;
    while (q->step()) add_to_minutes(out, q->text_view(0), q->text_view(1));
    return out;
  });
}

AttemptSummary SqliteStore::attempt_summary(TimePoint since, TimePoint recent_since,
                                            const std::optional<std::string>& webhook_id) {
  return readers_.read("attempt summary", [&](Connection& c) {
    // One range of attempts_started_at in time order (minutes group as they stream by): what
    // attempt_stats_since twice and attempts_per_minute read, read once.
    StatementScope q(
        c.cached(webhook_id ? "SELECT started_at, outcome, duration_ms, webhook FROM attempts "
                              "WHERE started_at >= ?1 AND webhook = ?2 ORDER BY started_at"
                            : "SELECT started_at, outcome, duration_ms, webhook FROM attempts "
                              "WHERE started_at >= ?1 ORDER BY started_at"));
    q->bind(1, common::format_rfc3339_ms(since));
    if (webhook_id) q->bind(2, *webhook_id);
    // Timestamps are stored in this one fixed-width format, so text order is time order.
    const auto recent_text = common::format_rfc3339_ms(recent_since);
    AttemptSummary out;
    ByWebhook by_webhook;
    while (q->step()) {
      const auto started_at = q->text_view(0);
      const auto outcome = q->text_view(1);
      const auto duration = q->int64(2);
      auto& w = windows_of(by_webhook, q->text_view(3));
      w.whole.add(outcome, duration);
      if (started_at >= recent_text) w.recent.add(outcome, duration);
      add_to_minutes(out.minutes, started_at, outcome);
    }
    for (auto& [id, w] : by_webhook) {
      out.whole.push_back(w.whole.finish(id));
      if (w.recent.stats.attempts > 0) out.recent.push_back(w.recent.finish(id));
    }
    return out;
  });
}

}  // namespace relay::store
