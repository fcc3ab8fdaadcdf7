#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "relay/server/HttpServer.hpp"
#include "relay/server/Intake.hpp"

namespace relay::server {

/// POST /v1/events and /v1/events/batch: validates (Intake.hpp), hands the events to the store
/// and answers from the store's callback, i.e. only after the commit. Runs on I/O threads
/// (never blocks: submit_events only queues); the answer may come from the writer thread.
class IntakeHandler {
 public:
  IntakeHandler(ServerContext context, std::shared_ptr<const std::atomic<bool>> shutting_down,
                IntakeKind kind);

  void operator()(Request request, std::function<void(Response)> respond) const;

 private:
  ServerContext context_;
  std::shared_ptr<const std::atomic<bool>> shutting_down_;
  IntakeKind kind_;
};

/// A JSON error response ({"error":{…}}).
Response error_response(int status, std::string_view code, std::string_view message);

}  // namespace relay::server
