// The dispatcher: due deliveries from the store to the HTTP client, and each result back.
//
// A DELIVERY'S LIFE (deliveries.status; the store's writer makes every change):
//
//                  intake (webhook enabled)          intake (webhook disabled)
//                          |                                  |
//                          v          pause (reload)          v
//      redeliver ---> [pending] <-------------------------> [paused] --cap--> (dropped)
//                     ^   |        resume (reload)
//     retry (kRetry)  |   | claim_due (this file)
//     or crash        |   v
//     recovery        +-[delivering] --kSucceeded--> (succeeded)
//                         |    \-------kFailed-----> (failed)
//                         +--- webhook removed -----> (cancelled)   (also from pending, paused)
//
//   pending     due at next_attempt_at; only these are claimed.
//   delivering  claimed by this process: an attempt is being made, or its result is not yet
//               committed. Nothing else touches it (redeliver leaves it alone); after a crash
//               it is due again (at-least-once). The SQLite store holds a claim as a lease in
//               memory (src/store/sqlite/Leases.hpp): the row stays pending, its reads show it
//               delivering, and a crash simply forgets the lease. A row left `delivering`
//               (a test send, an older binary) is made pending by recover_interrupted.
//   paused      its webhook is disabled; no next_attempt_at; at most max_queued per webhook.
//   succeeded, failed, cancelled, dropped   final (redeliver can make them pending again).
//
// WHAT THIS FILE KEEPS (all on `strand`, except on_response):
//   ready        claimed deliveries waiting for a free slot (claimed ahead so that the slots stay
//                busy while the next claim waits for the writer: ReadyQueue.hpp).
//   in_flight    HTTP attempts under way; bounded by delivery.concurrency and, per webhook, by
//                per_webhook_concurrency (inflight_per_webhook). busy_per_webhook counts
//                in flight + ready, and bounds what the next claim asks for.
//   unrecorded   attempts that ended but whose record has not committed: their delivery is
//                still claimed (delivering) in the store, so it cannot be claimed twice.
//   claiming/dirty  one claim at a time; a wake-up meanwhile sets dirty and claims again after.
//   timer        one timer at the earliest known due time (timer_deadline), never polling.
//   health       per webhook: its CircuitBreaker (CircuitBreaker.hpp), the first failure since
//                its last success (the auto-disable clock) and whether a disable was asked for.
//                An open circuit's webhook gets no claims except one delivery (the oldest due)
//                as its probe once the cooldown has passed; deliveries already claimed when it
//                opens go back to pending uncounted (release_claimed). A view of it is kept
//                under view_mutex for the API and /metrics.
//   stopping     shutdown: nothing new is claimed or started; `ready` is dropped (those stay
//                delivering and are recovered at the next start); shutdown_done runs when
//                in_flight and unrecorded reach 0, or when the grace timer fires.
// What an attempt's result means (succeeded, retry when, failed) is not decided here: that is
// delivery::classify_attempt, a pure function. This file only schedules.

#include "relay/dispatcher/Dispatcher.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "AttemptRecords.hpp"
#include "ReadyQueue.hpp"
#include "relay/common/Ascii.hpp"
#include "relay/common/HandOffBatch.hpp"
#include "relay/common/Redaction.hpp"
#include "relay/common/Time.hpp"
#include "relay/config/ConfigLoader.hpp"
#include "relay/delivery/AttemptClassifier.hpp"
#include "relay/delivery/HttpClient.hpp"
#include "relay/delivery/RequestBuilder.hpp"
#include "relay/dispatcher/CircuitBreaker.hpp"
#include "relay/store/Store.hpp"

namespace relay::dispatcher {

namespace net = boost::asio;
using common::TimePoint;

namespace {

// When the store cannot be written (disk full), claims and attempt records are retried at
// this pace instead of spinning; the disk recovering is noticed within this delay.
constexpr std::chrono::milliseconds kStorageRetryDelay{1000};
// Due work no claim could take (e.g. its webhook left the config) is retried at this pace.
constexpr std::chrono::milliseconds kIdleRecheck{1000};

using Strand = net::strand<net::io_context::executor_type>;

void post_to_strand(void* strand, std::vector<std::function<void()>> calls) {
  net::post(*static_cast<Strand*>(strand), [calls = std::move(calls)] {
    for (const auto& call : calls) call();
  });
}

}  // namespace

struct Dispatcher::Impl : std::enable_shared_from_this<Impl> {
  Impl(net::io_context& io, store::DeliveryStore& s, delivery::HttpSender& c, ConfigSource cfg)
      : strand(net::make_strand(io)),
        timer(strand),
        grace_timer(strand),
        store(s),
        client(c),
        config(std::move(cfg)) {}

  Strand strand;
  net::steady_timer timer;
  net::steady_timer grace_timer;
  std::optional<TimePoint> timer_deadline;
  store::DeliveryStore& store;
  delivery::HttpSender& client;
  ConfigSource config;
  AttemptObserver observer;
  OutcomeLog outcome_log;  // the attempts' log lines, "delivered" ones budgeted

  bool running = false;
  bool stopping = false;
  bool claiming = false;
  bool dirty = false;
  std::size_t in_flight = 0;   // HTTP attempts under way (bounded by the concurrency limits)
  std::size_t unrecorded = 0;  // finished attempts whose record is not committed yet
  std::unordered_map<std::string, int> busy_per_webhook;      // in flight + ready
  std::unordered_map<std::string, int> inflight_per_webhook;  // in flight only
  // Claimed and waiting for a free slot, per webhook; how far ahead: ReadyQueue.hpp.
  ReadyQueue ready;
  std::function<void(std::size_t)> shutdown_done;

  std::atomic<std::uint64_t> succeeded{0};
  std::atomic<std::uint64_t> retried{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::size_t> in_flight_seen{0};

  struct Health {
    CircuitBreaker breaker;
    std::optional<TimePoint> first_failure_at;  // since the last success
    std::optional<std::string> last_success_at;
    bool disable_requested = false;
  };
  std::unordered_map<std::string, Health> health;
  DisableRequest on_disable;
  PauseRequest on_pause;
  mutable std::mutex view_mutex;
  std::map<std::string, WebhookHealthView> view;  // guarded by view_mutex

  void publish(const std::string& webhook_id, const config::CircuitBreakerConfig& cb) {
    const auto& h = health[webhook_id];
    WebhookHealthView v;
    v.consecutive_failures = h.breaker.consecutive_failures();
    if (auto until = h.breaker.open_until(cb)) v.open_until = std::max(*until, common::now_ms());
    v.last_success_at = h.last_success_at;
    std::lock_guard lock(view_mutex);
    view[webhook_id] = std::move(v);
  }

  // ---- everything below runs on the strand ----

  void maybe_claim() {
    if (!running || stopping) return;
    if (claiming) {
      dirty = true;
      return;
    }
    const auto cfg = config();
    const int busy = static_cast<int>(in_flight + ready.count());
    if (busy >= cfg->delivery.concurrency * kPrefetch) return;
    std::vector<std::pair<std::string, int>> limits;
    const auto& cb = cfg->delivery.circuit_breaker;
    const auto now = common::now_ms();
    for (const auto& wh : cfg->webhooks) {
      if (!wh.enabled) continue;
      const auto it = busy_per_webhook.find(wh.id);
      const int used = it == busy_per_webhook.end() ? 0 : it->second;
      if (const auto h = health.find(wh.id); h != health.end() && h->second.breaker.is_open(cb)) {
        // Open: nothing is claimed but the probe, and only once nothing else of this
        // webhook is under way (their results still count).
        const auto& b = h->second.breaker;
        if (!b.may_probe(now, cb)) {
          if (!b.probe_in_flight()) arm_timer(*b.open_until(cb));
        } else if (used == 0) {
          limits.emplace_back(wh.id, 1);
        }
        continue;
      }
      const int n = claim_wanted(cfg->delivery.per_webhook_concurrency, cfg->delivery.concurrency,
                                 used, busy);
      if (n > 0) limits.emplace_back(wh.id, n);
    }
    fit_claims(limits, ready.claim_budget());
    if (limits.empty()) return;
    claiming = true;
    dirty = false;
    store.claim_due(common::now_ms(), std::move(limits),
                    [self = shared_from_this()](store::WriteStatus st, store::ClaimResult r) {
                      net::post(self->strand, [self, st, r = std::move(r)]() mutable {
                        self->on_claimed(st, std::move(r));
                      });
                    });
  }

  void on_claimed(store::WriteStatus st, store::ClaimResult result) {
    claiming = false;
    if (st != store::WriteStatus::kOk) {
      if (st == store::WriteStatus::kStorageUnavailable) {
        spdlog::warn("dispatcher: cannot claim due deliveries: storage unavailable; retrying");
        arm_timer(common::now_ms() + kStorageRetryDelay);
      }
      return;
    }
    const bool got_work = !result.claimed.empty();
    for (const auto& d : result.claimed) ++busy_per_webhook[d.webhook_id];
    ready.add(std::move(result.claimed));
    start_ready();
    const auto now = common::now_ms();
    if (result.next_due) {
      if (*result.next_due > now) {
        arm_timer(*result.next_due);
      } else if (!got_work && in_flight == 0) {
        arm_timer(now + kIdleRecheck);
      }
    }
    if (dirty) maybe_claim();
  }

  void arm_timer(TimePoint when) {
    if (stopping) return;
    if (timer_deadline && *timer_deadline <= when) return;
    timer_deadline = when;
    const auto delay = std::max(std::chrono::milliseconds(0), when - common::now_ms());
    timer.expires_after(delay);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return;  // re-armed or cancelled
      self->timer_deadline.reset();
      self->start_ready();  // a probe may be due
      self->maybe_claim();
    });
  }

  void start_ready() {
    if (ready.count() == 0 || stopping) return;
    const auto cfg = config();
    const auto concurrency = static_cast<std::size_t>(cfg->delivery.concurrency);
    const auto& cb = cfg->delivery.circuit_breaker;
    auto& queues = ready.by_webhook();
    for (auto it = queues.begin(); it != queues.end() && in_flight < concurrency;) {
      auto& queue = it->second;
      int& running_here = inflight_per_webhook[it->first];
      if (const auto h = health.find(it->first);
          h != health.end() && h->second.breaker.is_open(cb)) {
        // The oldest claimed one is the probe, when one may go now.
        auto& b = h->second.breaker;
        if (running_here == 0 && b.may_probe(common::now_ms(), cb)) {
          auto d = ready.pop(queue);
          b.probe_started(d.delivery_id);
          spdlog::info("circuit probe webhook={} delivery={}", it->first, d.delivery_id);
          start_attempt(cfg, std::move(d));
        }
        it = queue.empty() ? queues.erase(it) : std::next(it);
        continue;
      }
      while (!queue.empty() && in_flight < concurrency &&
             running_here < cfg->delivery.per_webhook_concurrency) {
        start_attempt(cfg, ready.pop(queue));
      }
      it = queue.empty() ? queues.erase(it) : std::next(it);
    }
  }

  void release(const std::string& webhook_id) {
    auto it = busy_per_webhook.find(webhook_id);
    if (it != busy_per_webhook.end() && --it->second <= 0) busy_per_webhook.erase(it);
  }

  void start_attempt(const std::shared_ptr<const config::Config>& cfg, store::DueDelivery d) {
    const auto* wh = cfg->find_webhook(d.webhook_id);
    if (wh == nullptr) {
      // Removed by a reload after the claim: the reload cancels its unfinished deliveries.
      if (auto h = health.find(d.webhook_id); h != health.end())
        h->second.breaker.probe_abandoned();
      release(d.webhook_id);
      return;
    }
    ++in_flight;
    ++inflight_per_webhook[d.webhook_id];
    in_flight_seen = in_flight;
    // The rest runs off the strand: building the request (HMAC), and the send, which runs inline
    // up to its first wait (URL parse, pool checkout, writing the request). On the strand every
    // request would queue behind the others and behind the dispatcher's bookkeeping while the
    // other I/O thread idles.
    net::post(strand.get_inner_executor(),
              [self = shared_from_this(), cfg, wh, d = std::move(d)]() mutable {
                auto request = delivery::build_request(*wh, cfg->delivery, d.delivery_id,
                                                       d.event_type, std::move(d.payload));
                auto record = std::make_shared<store::AttemptRecord>();
                start_record(*record, d, request);  // AttemptRecords.cpp
                self->client.send(
                    std::move(request), [self, record, cfg, webhook_id = std::move(d.webhook_id)](
                                            delivery::HttpResult res) mutable {
                      self->on_response(std::move(record), cfg->delivery.retry_schedule,
                                        std::move(webhook_id), std::move(res));
                    });
              });
  }

  // Runs on whichever io thread completed the request; touches only its own record.
  void on_response(std::shared_ptr<store::AttemptRecord> record,
                   const std::vector<delivery::Duration>& schedule, std::string webhook_id,
                   delivery::HttpResult res) {
    finish_record(*record, res, schedule);  // AttemptRecords.cpp
    // The HTTP slot is free as soon as the answer is in: the delivery stays `delivering` in the
    // store until its record commits, so it cannot be claimed twice meanwhile, and the next
    // attempts need not wait for this one's fsync.
    net::post(strand, [self = shared_from_this(), webhook_id, delivery_id = record->delivery_id,
                       outcome = record->outcome, status = record->response_status,
                       started = record->started_at] {
      // The circuit first: the claim that attempt_finished makes must see it open.
      self->note_health(webhook_id, delivery_id, outcome, status, started);
      self->attempt_finished(webhook_id);
    });
    write_record(std::move(record), std::move(webhook_id));
  }

  void attempt_finished(const std::string& webhook_id) {
    --in_flight;
    if (auto it = inflight_per_webhook.find(webhook_id);
        it != inflight_per_webhook.end() && --it->second <= 0) {
      inflight_per_webhook.erase(it);
    }
    in_flight_seen = in_flight;
    ++unrecorded;
    release(webhook_id);
    if (stopping) return;
    start_ready();
    maybe_claim();
  }

  // The circuit and auto-disable rules of SPEC §10, after each attempt's answer.
  void note_health(const std::string& webhook_id, const std::string& delivery_id,
                   common::AttemptOutcome outcome, std::optional<int> status, TimePoint started) {
    const auto cfg = config();
    const auto& cb = cfg->delivery.circuit_breaker;
    auto& h = health[webhook_id];
    const auto now = common::now_ms();
    if (outcome == common::AttemptOutcome::kSucceeded) {
      if (h.breaker.on_success()) {
        spdlog::info("circuit closed webhook={}: delivery={} succeeded; its backlog flows again",
                     webhook_id, delivery_id);
      }
      h.first_failure_at.reset();
      h.last_success_at = common::format_rfc3339_ms(started);  // as stored
      h.disable_requested = false;
      publish(webhook_id, cb);
      return;
    }
    if (!h.first_failure_at) h.first_failure_at = started;
    const bool probe = h.breaker.is_probe(delivery_id);
    if (h.breaker.on_failure(now, cb, probe)) {
      spdlog::warn(
          "circuit opened webhook={} after {} consecutive failed attempts; its deliveries wait, "
          "next probe at {}",
          webhook_id, h.breaker.consecutive_failures(),
          common::format_rfc3339_ms(*h.breaker.open_until(cb)));
      release_ready(webhook_id);
    } else if (probe) {
      spdlog::warn("circuit stays open webhook={}: probe delivery={} failed; next probe at {}",
                   webhook_id, delivery_id, common::format_rfc3339_ms(*h.breaker.open_until(cb)));
    }
    if (const auto until = h.breaker.open_until(cb); until && !stopping) arm_timer(*until);
    publish(webhook_id, cb);
    if (h.disable_requested || !on_disable) return;
    std::optional<std::string> reason;
    const auto after = cfg->delivery.auto_disable_after;
    if (status == 410) {
      reason = "the endpoint answered 410 Gone (delivery " + delivery_id + ")";
    } else if (after.count() > 0 && h.breaker.consecutive_failures() >= cb.failures &&
               now - *h.first_failure_at >= after) {
      reason = "no successful attempt for " + config::format_duration(after) + " (" +
               std::to_string(h.breaker.consecutive_failures()) +
               " consecutive failed attempts since " +
               common::format_rfc3339_ms(*h.first_failure_at) + ")";
    }
    if (reason) {
      h.disable_requested = true;
      on_disable(webhook_id, std::move(*reason));
    }
  }

  // Claimed deliveries of a webhook whose circuit just opened: back to pending, uncounted.
  void release_ready(const std::string& webhook_id) {
    auto back = ready.take(webhook_id);
    if (back.empty()) return;
    for (std::size_t i = 0; i < back.size(); ++i) release(webhook_id);
    store.release_claimed(std::move(back), [webhook_id](store::WriteStatus st) {
      if (st != store::WriteStatus::kOk) {
        // They stay `delivering` until the next start makes them due again.
        spdlog::error("webhook={}: cannot release deliveries held by its open circuit", webhook_id);
      }
    });
  }

  // `bare`: the record without the response, after the database rejected the full one.
  void write_record(std::shared_ptr<store::AttemptRecord> record, std::string webhook_id,
                    bool bare = false) {
    store.record_attempt_shared(
        record, [self = shared_from_this(), record, bare,
                 webhook_id = std::move(webhook_id)](store::WriteStatus st) {
          std::function<void()> call = [self, st, record, webhook_id, bare]() mutable {
            self->on_recorded(st, std::move(record), std::move(webhook_id), bare);
          };
          // A group commit's records reach the strand in one post (common::HandOffBatch).
          if (!common::HandOffBatch::add(&self->strand, &post_to_strand, call)) {
            net::post(self->strand, std::move(call));
          }
        });
  }

  void on_recorded(store::WriteStatus st, std::shared_ptr<store::AttemptRecord> record,
                   std::string webhook_id, bool bare) {
    if (st == store::WriteStatus::kStorageUnavailable && !stopping) {
      // Keep the result: the delivery stays `delivering` until the disk accepts
      // the record (and a crash meanwhile makes it due again: at-least-once).
      spdlog::warn(
          "delivery={} webhook={} attempt={}: cannot record attempt: storage "
          "unavailable; retrying",
          record->delivery_id, webhook_id, record->attempt_number);
      auto t = std::make_shared<net::steady_timer>(strand, kStorageRetryDelay);
      t->async_wait(
          [self = shared_from_this(), t, record, webhook_id, bare](boost::system::error_code) {
            self->write_record(record, webhook_id, bare);
          });
      return;
    }
    if (st == store::WriteStatus::kRejected && !bare) {
      // The database refused the row (a constraint; a bug, not a full disk). Left alone, the
      // delivery would stay `delivering` until a restart. Record the outcome again without
      // what came from the receiver, which is what a row can most plausibly be refused for.
      spdlog::error(
          "delivery={} webhook={} attempt={}: the database rejected the attempt record; "
          "recording it again without the response",
          record->delivery_id, webhook_id, record->attempt_number);
      auto stripped = std::make_shared<store::AttemptRecord>(*record);
      stripped->request_headers = "{}";
      stripped->response_headers = "{}";
      stripped->response_body.clear();
      stripped->error = "attempt record rejected by the database; response not kept";
      write_record(std::move(stripped), std::move(webhook_id), true);
      return;
    }
    --unrecorded;
    if (st == store::WriteStatus::kRejected) {
      spdlog::error(
          "delivery={} webhook={} attempt={}: the database rejected the attempt record again; "
          "the delivery stays delivering until the next start, which makes it due again",
          record->delivery_id, webhook_id, record->attempt_number);
    }
    if (st == store::WriteStatus::kOk) {
      count_outcome(record->outcome);
      outcome_log.log(*record, webhook_id);  // AttemptRecords.cpp
      // The claim that followed the response ran before this commit and could not see the
      // retry's due time: make sure the one timer covers it.
      // A retry of a webhook disabled meanwhile: its pause skipped this delivery (PauseRequest).
      if (record->new_status == store::DeliveryStatus::kPending) {
        if (record->next_attempt_at) arm_timer(*record->next_attempt_at);
        const auto* wh = config()->find_webhook(webhook_id);
        if (wh != nullptr && !wh->enabled && on_pause) on_pause(webhook_id);
      }
    }
    if (observer) {
      observer(webhook_id, std::string(store::to_string(record->outcome)).c_str(),
               record->duration_ms);
    }
    if (stopping && in_flight == 0 && unrecorded == 0) finish_shutdown();
  }

  void count_outcome(store::AttemptOutcome outcome) {
    auto& counter = outcome == store::AttemptOutcome::kSucceeded ? succeeded
                    : outcome == store::AttemptOutcome::kRetry   ? retried
                                                                 : failed;
    ++counter;
  }

  void begin_shutdown(std::chrono::milliseconds grace, std::function<void(std::size_t)> done) {
    stopping = true;
    timer.cancel();
    shutdown_done = std::move(done);
    // Claimed but not started: left `delivering`, recovered (due now) at the next start.
    ready.clear();
    if (in_flight == 0 && unrecorded == 0) {
      finish_shutdown();
      return;
    }
    grace_timer.expires_after(grace);
    grace_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->finish_shutdown();
    });
  }

  void finish_shutdown() {
    grace_timer.cancel();
    outcome_log.flush();  // the count of deliveries not logged one by one, if any
    if (auto done = std::exchange(shutdown_done, nullptr)) done(in_flight);
  }
};

Dispatcher::Dispatcher(net::io_context& io, store::DeliveryStore& store,
                       delivery::HttpSender& client, ConfigSource config)
    : impl_(std::make_shared<Impl>(io, store, client, std::move(config))) {}

Dispatcher::~Dispatcher() = default;

void Dispatcher::set_attempt_observer(AttemptObserver observer) {
  net::post(impl_->strand, [impl = impl_, observer = std::move(observer)]() mutable {
    impl->observer = std::move(observer);
  });
}

void Dispatcher::set_webhook_handlers(DisableRequest disable, PauseRequest pause) {
  net::post(impl_->strand,
            [impl = impl_, disable = std::move(disable), pause = std::move(pause)]() mutable {
              impl->on_disable = std::move(disable);
              impl->on_pause = std::move(pause);
            });
}

void Dispatcher::restore_health(std::vector<store::WebhookStateRow> rows) {
  net::post(impl_->strand, [impl = impl_, rows = std::move(rows)] {
    const auto cfg = impl->config();
    for (const auto& r : rows) {
      // Built whole, then moved in (assigning a temporary breaker to the member trips GCC 12's
      // -Wmaybe-uninitialized on its empty optional<string>).
      auto& h = impl->health[r.webhook_id];
      Impl::Health restored{CircuitBreaker(r.consecutive_failures), std::nullopt, r.last_success_at,
                            h.disable_requested};
      if (r.first_failure_at) {
        restored.first_failure_at = common::parse_rfc3339(*r.first_failure_at);
      }
      h = std::move(restored);
      impl->publish(r.webhook_id, cfg->delivery.circuit_breaker);
    }
  });
}

void Dispatcher::reset_health(const std::string& webhook_id) {
  net::post(impl_->strand, [impl = impl_, webhook_id] {
    auto& h = impl->health[webhook_id];
    auto last_success = h.last_success_at;
    h = Impl::Health{};
    h.last_success_at = std::move(last_success);
    impl->publish(webhook_id, impl->config()->delivery.circuit_breaker);
  });
}

std::map<std::string, WebhookHealthView> Dispatcher::health() const {
  std::lock_guard lock(impl_->view_mutex);
  return impl_->view;
}

void Dispatcher::start() {
  net::post(impl_->strand, [impl = impl_] {
    impl->running = true;
    impl->maybe_claim();
  });
}

void Dispatcher::notify() {
  net::post(impl_->strand, [impl = impl_] { impl->maybe_claim(); });
}

void Dispatcher::shutdown(std::chrono::milliseconds grace,
                          std::function<void(std::size_t unfinished)> done) {
  net::post(impl_->strand, [impl = impl_, grace, done = std::move(done)]() mutable {
    impl->begin_shutdown(grace, std::move(done));
  });
}

DispatcherStats Dispatcher::stats() const {
  DispatcherStats s;
  s.attempts_succeeded = impl_->succeeded;
  s.attempts_retry = impl_->retried;
  s.attempts_failed = impl_->failed;
  s.in_flight = impl_->in_flight_seen;
  return s;
}

}  // namespace relay::dispatcher
