#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <functional>
#include <memory>

#include "relay/common/Time.hpp"
#include "relay/config/Config.hpp"
#include "relay/store/Store.hpp"

namespace relay::daemon {

/// Deletes rows older than storage.retention: every minute, in small paced batches.
/// Runs on the executor it is given, which must be a strand (the daemon's timer strand): the
/// timer is armed and cancelled only there. start() and stop() may be called from any thread;
/// after stop() no store request is made and no callback touches the job, but a request in
/// flight may still complete: keep the job alive until the store is closed.
class RetentionJob {
 public:
  using ConfigSource = std::function<std::shared_ptr<const config::Config>()>;

  RetentionJob(boost::asio::any_io_executor strand, store::MaintenanceStore& store,
               ConfigSource config);

  void start();
  void stop();

 private:
  void run();
  void prune(common::TimePoint cutoff, std::size_t total);
  void after_batch(common::TimePoint cutoff, std::size_t total, store::WriteStatus st,
                   std::size_t removed, std::chrono::milliseconds took);
  void schedule();

  boost::asio::any_io_executor strand_;
  boost::asio::steady_timer timer_;
  store::MaintenanceStore& store_;
  ConfigSource config_;
  bool stopped_ = false;  // on the strand
};

}  // namespace relay::daemon
