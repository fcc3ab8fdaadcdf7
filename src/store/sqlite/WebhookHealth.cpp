#include "WebhookHealth.hpp"

#include "Sqlite.hpp"

namespace relay::store::sqlite {

void write_health_folds(Connection& c, const HealthFolds& folds) {
  for (const auto& [webhook, f] : folds) {
    // With a success in the group the streak is what followed it; with failures only, they
    // extend the stored streak (its first failure stays the earliest).
    auto& s = f.last_success_at
                  ? c.cached(
                        "INSERT INTO webhook_state (webhook_id, last_success_at, first_failure_at, "
                        "consecutive_failures) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (webhook_id) "
                        "DO UPDATE SET last_success_at = ?2, first_failure_at = ?3, "
                        "consecutive_failures = ?4")
                  : c.cached(
                        "INSERT INTO webhook_state (webhook_id, first_failure_at, "
                        "consecutive_failures) VALUES (?1, ?3, ?4) ON CONFLICT (webhook_id) DO "
                        "UPDATE SET first_failure_at = coalesce(first_failure_at, ?3), "
                        "consecutive_failures = consecutive_failures + ?4");
    StatementScope u(s);
    u->bind(1, webhook);
    if (f.last_success_at) u->bind(2, *f.last_success_at);
    u->bind(3, f.first_failure_at);
    u->bind(4, f.failures);
    u->run();
  }
}

}  // namespace relay::store::sqlite
