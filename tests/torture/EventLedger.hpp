#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace relay::torture {

/// What relayd answered for one event (or, for an event whose answer was lost, what the file
/// holds): the same on every later answer for that id.
struct Receipt {
  std::string created_at;
  std::map<std::string, std::string> deliveries;  // webhook id -> delivery id
  bool operator==(const Receipt&) const = default;
};

/// One event the test made, with its client-chosen id (the idempotency key).
struct PostedEvent {
  std::string id;
  std::string type;
  nlohmann::json data;
  std::size_t first_post = 0;  // the request that first carried it
  bool acked = false;          // some answer was 202 or 200
  bool in_db = false;          // in the file at the last kill
  std::optional<Receipt> receipt;
};

/// One intake request body, kept so that a request whose answer was lost can be sent again
/// byte for byte.
struct Post {
  bool batch = false;
  std::vector<std::string> ids;
  std::string body;
  [[nodiscard]] std::string target() const { return batch ? "/v1/events/batch" : "/v1/events"; }
};

/// Everything the intake clients posted and were told, and the expectations that follow from
/// it: a single post answers 200 exactly when its id is already stored (acked before, or found
/// in the file after a kill), else 202; every answer for an id carries the same created_at and
/// delivery ids. Broken expectations are collected as problems. Thread-safe.
class EventLedger {
 public:
  explicit EventLedger(std::set<std::string> webhooks) : webhooks_(std::move(webhooks)) {}

  /// Registers new events and the request that carries them; returns the request's index.
  std::size_t add_post(bool batch, std::vector<PostedEvent> events);
  /// A single post of an already acked event, picked at random; nullopt when none is acked.
  std::optional<std::size_t> add_duplicate(std::mt19937_64& rng);
  [[nodiscard]] Post post(std::size_t index) const;

  /// Checks an answer against the expectations and records the receipts.
  void answered(std::size_t post, int status, const std::string& body);
  /// No answer (the daemon died) or 503 overloaded: the request is sent again later.
  void lost(std::size_t post);
  std::optional<std::size_t> next_repost();
  [[nodiscard]] std::size_t reposts_waiting() const;

  /// Runs `fn` with the events under the lock (for the database audit, while no client runs).
  void with_events(const std::function<void(std::map<std::string, PostedEvent>&)>& fn);
  /// Every batch request's ids (for the all-or-nothing check).
  [[nodiscard]] std::vector<std::vector<std::string>> batches() const;

  void add_problem(std::string problem);
  [[nodiscard]] std::vector<std::string> problems() const;
  [[nodiscard]] std::size_t problem_count() const;

  [[nodiscard]] std::size_t event_count() const;
  [[nodiscard]] std::size_t acked_count() const;
  [[nodiscard]] std::size_t posts_sent() const;
  [[nodiscard]] std::size_t answers_200() const;
  [[nodiscard]] std::size_t overloaded() const;

 private:
  void check_receipt(PostedEvent& event, const nlohmann::json& item);
  void add_problem_locked(std::string problem);

  const std::set<std::string> webhooks_;
  mutable std::mutex mutex_;
  std::map<std::string, PostedEvent> events_;
  std::vector<Post> posts_;
  std::vector<std::size_t> reposts_;
  std::vector<std::string> acked_ids_;  // for picking duplicates
  std::vector<std::string> problems_;   // the first ones
  std::size_t problem_count_ = 0;
  std::size_t acked_ = 0;
  std::size_t answers_200_ = 0;
  std::size_t overloaded_ = 0;
};

}  // namespace relay::torture
