#include "relay/dispatcher/Dispatcher.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "relay/common/Ascii.hpp"
#include "relay/common/Redaction.hpp"
#include "relay/common/Time.hpp"
#include "relay/delivery/HttpClient.hpp"
#include "relay/delivery/RequestBuilder.hpp"
#include "relay/delivery/RetryPolicy.hpp"
#include "relay/store/Store.hpp"

namespace relay::dispatcher {

namespace net = boost::asio;
using common::TimePoint;

namespace {

// When the store cannot be written (disk full), claims and attempt records are retried at
// this pace instead of spinning; the disk recovering is noticed within this delay.
constexpr std::chrono::milliseconds kStorageRetryDelay{1000};
// Due work exists but nothing could be claimed (e.g. a webhook absent from the config):
// look again at this pace rather than in a hot loop.
constexpr std::chrono::milliseconds kIdleRecheck{1000};
// Deliveries claimed ahead, as a multiple of the concurrency limits (see `ready`).
constexpr std::size_t kPrefetch = 2;

std::optional<std::string> find_header(const delivery::Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (common::iequals(k, name)) return v;
  }
  return std::nullopt;
}

// Response bodies go to a TEXT column and to JSON answers of the admin API: keep them valid
// UTF-8 by replacing what is not.
std::string printable_body(const std::string& body) {
  // ASCII is valid UTF-8 as it is (the usual case: a short JSON answer or none).
  if (std::all_of(body.begin(), body.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    return body;
  }
  const auto dumped =
      nlohmann::json(body).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return nlohmann::json::parse(dumped).get<std::string>();
}

}  // namespace

struct Dispatcher::Impl : std::enable_shared_from_this<Impl> {
  Impl(net::io_context& io, store::Store& s, delivery::HttpClientPool& c, ConfigSource cfg)
      : strand(net::make_strand(io)),
        timer(strand),
        grace_timer(strand),
        store(s),
        client(c),
        config(std::move(cfg)) {}

  net::strand<net::io_context::executor_type> strand;
  net::steady_timer timer;
  net::steady_timer grace_timer;
  std::optional<TimePoint> timer_deadline;
  store::Store& store;
  delivery::HttpClientPool& client;
  ConfigSource config;
  AttemptObserver observer;

  bool running = false;
  bool stopping = false;
  bool claiming = false;
  bool dirty = false;
  std::size_t in_flight = 0;   // HTTP attempts under way (bounded by the concurrency limits)
  std::size_t unrecorded = 0;  // finished attempts whose record is not committed yet
  std::unordered_map<std::string, int> busy_per_webhook;      // in flight + ready
  std::unordered_map<std::string, int> inflight_per_webhook;  // in flight only
  // Claimed and waiting for a free slot, per webhook. Claiming ahead (kPrefetch × the limits)
  // overlaps the claim's commit with the attempts under way instead of idling through it.
  std::unordered_map<std::string, std::deque<store::DueDelivery>> ready;
  std::size_t ready_count = 0;
  std::function<void(std::size_t)> shutdown_done;

  std::atomic<std::uint64_t> succeeded{0};
  std::atomic<std::uint64_t> retried{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::size_t> in_flight_seen{0};

  // ---- everything below runs on the strand ----

  void maybe_claim() {
    if (!running || stopping) return;
    if (claiming) {
      dirty = true;
      return;
    }
    const auto cfg = config();
    const auto concurrency = static_cast<std::size_t>(cfg->delivery.concurrency);
    const std::size_t busy = in_flight + ready_count;
    if (busy >= concurrency * kPrefetch) return;
    const int global_free = static_cast<int>(concurrency * kPrefetch - busy);
    std::vector<std::pair<std::string, int>> limits;
    for (const auto& wh : cfg->webhooks) {
      if (!wh.enabled) continue;
      const auto it = busy_per_webhook.find(wh.id);
      const int used = it == busy_per_webhook.end() ? 0 : it->second;
      const int free = std::min(
          cfg->delivery.per_webhook_concurrency * static_cast<int>(kPrefetch) - used, global_free);
      if (free > 0) limits.emplace_back(wh.id, free);
    }
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
    for (auto& d : result.claimed) {
      ++busy_per_webhook[d.webhook_id];
      ++ready_count;
      auto& queue = ready[d.webhook_id];
      queue.push_back(std::move(d));
    }
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
      self->maybe_claim();
    });
  }

  void start_ready() {
    if (ready_count == 0 || stopping) return;
    const auto cfg = config();
    const auto concurrency = static_cast<std::size_t>(cfg->delivery.concurrency);
    for (auto it = ready.begin(); it != ready.end() && in_flight < concurrency;) {
      auto& queue = it->second;
      int& running_here = inflight_per_webhook[it->first];
      while (!queue.empty() && in_flight < concurrency &&
             running_here < cfg->delivery.per_webhook_concurrency) {
        auto d = std::move(queue.front());
        queue.pop_front();
        --ready_count;
        start_attempt(cfg, std::move(d));
      }
      it = queue.empty() ? ready.erase(it) : std::next(it);
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
                auto record = std::make_shared<store::AttemptRecord>();
                record->delivery_id = d.delivery_id;
                record->delivery_rowid = d.rowid;
                record->event_id = d.event_id;
                record->attempt_number = d.attempt_count + 1;
                auto request = delivery::build_request(*wh, cfg->delivery, d.delivery_id,
                                                       d.event_type, std::move(d.payload));
                record->started_at = common::now_ms();
                record->url = common::redact_url(request.url);
                record->request_headers = delivery::headers_for_log(request.headers);
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
    const auto now = common::now_ms();
    record->duration_ms = res.duration.count();
    record->response_status = res.status;
    record->response_headers = delivery::headers_json(res.headers, false);
    record->response_body = printable_body(res.body);
    record->error = res.error;
    // A body that broke off after the status line does not change the outcome (the status
    // counts), but the attempt row says why the body is short.
    if (record->error.empty() && !res.body_error.empty()) {
      record->error = "response body cut off: " + res.body_error;
    }
    std::optional<delivery::Duration> retry_after;
    if (res.status && (*res.status == 429 || *res.status == 503)) {
      if (auto v = find_header(res.headers, "retry-after")) {
        retry_after = delivery::parse_retry_after(*v, now);
      }
    }
    const auto decision =
        delivery::decide_retry(record->attempt_number, res.status, retry_after, schedule);
    switch (decision.kind) {
      case delivery::RetryDecision::Kind::kSucceeded:
        record->outcome = store::AttemptOutcome::kSucceeded;
        record->new_status = store::DeliveryStatus::kSucceeded;
        break;
      case delivery::RetryDecision::Kind::kRetry:
        record->outcome = store::AttemptOutcome::kRetry;
        record->new_status = store::DeliveryStatus::kPending;
        record->next_attempt_at = now + decision.delay;
        break;
      case delivery::RetryDecision::Kind::kFailed:
        record->outcome = store::AttemptOutcome::kFailed;
        record->new_status = store::DeliveryStatus::kFailed;
        break;
    }
    // The HTTP slot is free as soon as the answer is in: the delivery stays `delivering` in the
    // store until its record commits, so it cannot be claimed twice meanwhile, and the next
    // attempts need not wait for this one's fsync.
    net::post(strand,
              [self = shared_from_this(), webhook_id] { self->attempt_finished(webhook_id); });
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

  void write_record(std::shared_ptr<store::AttemptRecord> record, std::string webhook_id) {
    store.record_attempt(*record, [self = shared_from_this(), record,
                                   webhook_id = std::move(webhook_id)](store::WriteStatus st) {
      net::post(self->strand, [self, st, record, webhook_id]() mutable {
        self->on_recorded(st, std::move(record), std::move(webhook_id));
      });
    });
  }

  void on_recorded(store::WriteStatus st, std::shared_ptr<store::AttemptRecord> record,
                   std::string webhook_id) {
    if (st == store::WriteStatus::kStorageUnavailable && !stopping) {
      // Keep the result: the delivery stays `delivering` until the disk accepts
      // the record (and a crash meanwhile makes it due again: at-least-once).
      spdlog::warn(
          "delivery={} webhook={} attempt={}: cannot record attempt: storage "
          "unavailable; retrying",
          record->delivery_id, webhook_id, record->attempt_number);
      auto t = std::make_shared<net::steady_timer>(strand, kStorageRetryDelay);
      t->async_wait([self = shared_from_this(), t, record, webhook_id](boost::system::error_code) {
        self->write_record(record, webhook_id);
      });
      return;
    }
    --unrecorded;
    if (st == store::WriteStatus::kOk) {
      log_outcome(*record, webhook_id);
      // The claim that followed the response ran before this commit and could not see the
      // retry's due time: make sure the one timer covers it.
      if (record->new_status == store::DeliveryStatus::kPending && record->next_attempt_at) {
        arm_timer(*record->next_attempt_at);
      }
    }
    if (observer) {
      observer(webhook_id, std::string(store::to_string(record->outcome)).c_str(),
               record->duration_ms);
    }
    if (stopping && in_flight == 0 && unrecorded == 0) finish_shutdown();
  }

  void log_outcome(const store::AttemptRecord& r, const std::string& webhook_id) {
    const std::string what =
        r.response_status ? "HTTP " + std::to_string(*r.response_status) : r.error;
    switch (r.outcome) {
      case store::AttemptOutcome::kSucceeded:
        ++succeeded;
        spdlog::info(
            "delivered delivery={} webhook={} event={} attempt={} status={} duration_ms={}",
            r.delivery_id, webhook_id, r.event_id, r.attempt_number, what, r.duration_ms);
        break;
      case store::AttemptOutcome::kRetry:
        ++retried;
        spdlog::warn(
            "attempt failed, will retry delivery={} webhook={} event={} attempt={} result=\"{}\" "
            "next_attempt_at={}",
            r.delivery_id, webhook_id, r.event_id, r.attempt_number, what,
            r.next_attempt_at ? common::format_rfc3339_ms(*r.next_attempt_at) : "");
        break;
      case store::AttemptOutcome::kFailed:
        ++failed;
        spdlog::error(
            "delivery failed, giving up delivery={} webhook={} event={} attempt={} result=\"{}\"",
            r.delivery_id, webhook_id, r.event_id, r.attempt_number, what);
        break;
    }
  }

  void begin_shutdown(std::chrono::milliseconds grace, std::function<void(std::size_t)> done) {
    stopping = true;
    timer.cancel();
    shutdown_done = std::move(done);
    // Claimed but not started: left `delivering`, recovered (due now) at the next start.
    ready.clear();
    ready_count = 0;
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
    if (auto done = std::exchange(shutdown_done, nullptr)) done(in_flight);
  }
};

Dispatcher::Dispatcher(net::io_context& io, store::Store& store, delivery::HttpClientPool& client,
                       ConfigSource config)
    : impl_(std::make_shared<Impl>(io, store, client, std::move(config))) {}

Dispatcher::~Dispatcher() = default;

void Dispatcher::set_attempt_observer(AttemptObserver observer) {
  net::post(impl_->strand, [impl = impl_, observer = std::move(observer)]() mutable {
    impl->observer = std::move(observer);
  });
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
