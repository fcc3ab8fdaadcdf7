#include "RetentionJob.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>

namespace relay::daemon {

namespace net = boost::asio;

namespace {

// Prunes in small batches, one write request at a time, so delivery and intake requests
// interleave with it in the writer queue instead of waiting behind one huge DELETE. Batches
// are paced: after each, the job waits kPruneRest times as long as the batch took, so it
// takes at most ~1/(1+kPruneRest) of the writer (the soak test saw back-to-back 2,000-row
// batches stall intake for a minute at 2,000 events/s). Running every minute keeps each run
// small; 1,000 rows in ~15 ms at a 25% duty cycle still prunes far faster than rows arrive.
constexpr std::size_t kPruneBatch = 1000;
constexpr std::chrono::minutes kPruneInterval{1};
constexpr int kPruneRest = 3;
constexpr std::chrono::milliseconds kPruneMinRest{10};

}  // namespace

RetentionJob::RetentionJob(net::any_io_executor strand, store::MaintenanceStore& store,
                           ConfigSource config)
    : strand_(strand), timer_(strand), store_(store), config_(std::move(config)) {}

void RetentionJob::start() {
  net::post(strand_, [this] { run(); });
}

void RetentionJob::stop() {
  net::post(strand_, [this] {
    stopped_ = true;
    timer_.cancel();
  });
}

void RetentionJob::run() {
  if (stopped_) return;
  const auto cutoff = common::now_ms() - config_()->storage.retention;
  prune(cutoff, 0);
}

void RetentionJob::prune(common::TimePoint cutoff, std::size_t total) {
  const auto started = std::chrono::steady_clock::now();
  // The store calls back on its writer thread: everything else happens on the strand.
  store_.prune_before(cutoff, kPruneBatch,
                      [this, cutoff, total, started](store::WriteStatus st, std::size_t removed) {
                        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - started);
                        net::post(strand_, [this, cutoff, total, st, removed, took] {
                          after_batch(cutoff, total, st, removed, took);
                        });
                      });
}

void RetentionJob::after_batch(common::TimePoint cutoff, std::size_t total, store::WriteStatus st,
                               std::size_t removed, std::chrono::milliseconds took) {
  if (stopped_) return;
  if (st == store::WriteStatus::kOk && removed == kPruneBatch) {
    timer_.expires_after(std::max(kPruneMinRest, took * kPruneRest));
    timer_.async_wait([this, cutoff, total, removed](boost::system::error_code ec) {
      if (!ec && !stopped_) prune(cutoff, total + removed);
    });
    return;
  }
  if (st != store::WriteStatus::kOk) {
    spdlog::warn("retention: pruning failed (storage unavailable); trying again later");
  } else if (total + removed > 0) {
    spdlog::info("retention: pruned {} rows older than {}", total + removed,
                 common::format_rfc3339_ms(cutoff));
  }
  schedule();
}

void RetentionJob::schedule() {
  timer_.expires_after(kPruneInterval);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) run();
  });
}

}  // namespace relay::daemon
