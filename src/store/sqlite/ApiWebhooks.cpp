// Webhooks created over the API: one row each, its document sealed by the daemon.
#include <memory>
#include <string>
#include <vector>

#include "SqliteStore.hpp"
#include "relay/common/Base64.hpp"

namespace relay::store {

using sqlite::StatementScope;

void SqliteStore::put_api_webhook(StoredWebhook webhook, bool create,
                                  std::function<void(WriteStatus, bool)> done) {
  auto exists = std::make_shared<bool>(false);
  WriteRequest req;
  req.apply = [webhook = std::move(webhook), create, exists](sqlite::WriteContext& ctx) {
    auto& c = ctx.conn();
    {
      StatementScope q(c.cached("SELECT 1 FROM api_webhooks WHERE id = ?1"));
      q->bind(1, webhook.id);
      *exists = q->step();
    }
    if (create == *exists) return;  // taken (create) or gone (replace): nothing written
    StatementScope u(c.cached(
        "INSERT INTO api_webhooks (id, sealed, created_at, updated_at) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed, updated_at = "
        "excluded.updated_at"));
    u->bind(1, webhook.id);
    u->bind(2, common::base64_encode(webhook.sealed));
    u->bind(3, webhook.created_at);
    u->bind(4, webhook.updated_at);
    u->run();
  };
  req.complete = [exists, done = std::move(done)](WriteStatus st) { done(st, *exists); };
  writer_->enqueue(std::move(req));
}

void SqliteStore::delete_api_webhook(std::string id, std::function<void(WriteStatus, bool)> done) {
  auto found = std::make_shared<bool>(false);
  WriteRequest req;
  req.apply = [id = std::move(id), found](sqlite::WriteContext& ctx) {
    auto& c = ctx.conn();
    StatementScope u(c.cached("DELETE FROM api_webhooks WHERE id = ?1"));
    u->bind(1, id);
    u->run();
    *found = c.changes() > 0;
  };
  req.complete = [found, done = std::move(done)](WriteStatus st) { done(st, *found); };
  writer_->enqueue(std::move(req));
}

std::vector<StoredWebhook> SqliteStore::list_api_webhooks() {
  return readers_.read("api webhooks", [](Connection& c) {
    StatementScope q(
        c.cached("SELECT id, sealed, created_at, updated_at FROM api_webhooks ORDER BY id"));
    std::vector<StoredWebhook> out;
    while (q->step()) {
      StoredWebhook w;
      w.id = q->text(0);
      w.sealed = common::base64_decode(q->text(1)).value_or(std::string());
      w.created_at = q->text(2);
      w.updated_at = q->text(3);
      out.push_back(std::move(w));
    }
    return out;
  });
}

}  // namespace relay::store
