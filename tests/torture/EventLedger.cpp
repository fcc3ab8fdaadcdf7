#include "EventLedger.hpp"

#include <stdexcept>

namespace relay::torture {

using nlohmann::json;

namespace {

constexpr std::size_t kProblemsKept = 40;

json item_json(const PostedEvent& e) {
  return json{{"event", e.type}, {"data", e.data}, {"id", e.id}};
}

}  // namespace

std::size_t EventLedger::add_post(bool batch, std::vector<PostedEvent> events) {
  Post post;
  post.batch = batch;
  json items = json::array();
  for (const auto& e : events) {
    post.ids.push_back(e.id);
    items.push_back(item_json(e));
  }
  post.body = batch ? json{{"events", items}}.dump() : items.at(0).dump();
  std::lock_guard lock(mutex_);
  const std::size_t index = posts_.size();
  for (auto& e : events) {
    e.first_post = index;
    const auto id = e.id;
    if (!events_.emplace(id, std::move(e)).second) {
      throw std::logic_error("event id used twice by the test: " + id);
    }
  }
  posts_.push_back(std::move(post));
  return index;
}

std::optional<std::size_t> EventLedger::add_duplicate(std::mt19937_64& rng) {
  std::lock_guard lock(mutex_);
  if (acked_ids_.empty()) return std::nullopt;
  const auto& id =
      acked_ids_[std::uniform_int_distribution<std::size_t>(0, acked_ids_.size() - 1)(rng)];
  Post post;
  post.ids = {id};
  post.body = item_json(events_.at(id)).dump();
  posts_.push_back(std::move(post));
  return posts_.size() - 1;
}

Post EventLedger::post(std::size_t index) const {
  std::lock_guard lock(mutex_);
  return posts_.at(index);
}

void EventLedger::check_receipt(PostedEvent& event, const json& item) {
  Receipt r;
  try {
    if (item.at("id") != event.id || item.at("event") != event.type) {
      add_problem_locked("receipt for " + event.id + " names another event: " + item.dump());
      return;
    }
    r.created_at = item.at("created_at").get<std::string>();
    for (const auto& d : item.at("deliveries")) {
      r.deliveries[d.at("webhook").get<std::string>()] = d.at("id").get<std::string>();
    }
  } catch (const json::exception& e) {
    add_problem_locked("receipt for " + event.id + " is malformed (" + e.what() +
                       "): " + item.dump());
    return;
  }
  std::set<std::string> webhooks;
  for (const auto& [webhook, id] : r.deliveries) webhooks.insert(webhook);
  if (webhooks != webhooks_ || r.deliveries.size() != item.at("deliveries").size()) {
    add_problem_locked("receipt for " + event.id + " has deliveries " +
                       item.at("deliveries").dump() + ", expected one per webhook");
  }
  if (event.receipt && !(*event.receipt == r)) {
    add_problem_locked("event " + event.id +
                       " answered with another result than before: " + item.dump());
  }
  if (!event.receipt) event.receipt = r;
  if (!event.acked) {
    event.acked = true;
    ++acked_;
    acked_ids_.push_back(event.id);
  }
}

void EventLedger::answered(std::size_t index, int status, const std::string& body) {
  std::lock_guard lock(mutex_);
  const Post& post = posts_.at(index);
  if (status == 503) {
    const auto j = json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].value("code", "") == "overloaded") {
      ++overloaded_;
      reposts_.push_back(index);
      return;
    }
  }
  const std::string what = (post.batch ? "batch " : "single ") + post.ids.front();
  if (status != 200 && status != 202) {
    add_problem_locked(what + ": unexpected answer " + std::to_string(status) + " " + body);
    reposts_.push_back(index);
    return;
  }
  const auto j = json::parse(body, nullptr, false);
  if (post.batch) {
    if (status != 202) add_problem_locked(what + ": a batch answers 202, got " + body);
    if (!j.is_object() || !j.contains("events") || !j["events"].is_array() ||
        j["events"].size() != post.ids.size()) {
      add_problem_locked(what + ": malformed batch answer " + body);
      return;
    }
    for (std::size_t i = 0; i < post.ids.size(); ++i) {
      check_receipt(events_.at(post.ids[i]), j["events"][i]);
    }
    return;
  }
  PostedEvent& event = events_.at(post.ids.front());
  // Stored already exactly when acked before or found in the file after the last kill: nothing
  // else can have committed it since (a 503 commits nothing; a lost answer ends the epoch).
  const int expected = event.acked || event.in_db ? 200 : 202;
  if (status == 200) ++answers_200_;
  if (status != expected) {
    add_problem_locked(what + ": expected " + std::to_string(expected) + " (acked " +
                       std::to_string(event.acked) + ", in file " + std::to_string(event.in_db) +
                       "), got " + std::to_string(status) + " " + body);
  }
  if (!j.is_object()) {
    add_problem_locked(what + ": answer is not a JSON object: " + body);
    return;
  }
  check_receipt(event, j);
}

void EventLedger::lost(std::size_t post) {
  std::lock_guard lock(mutex_);
  reposts_.push_back(post);
}

std::optional<std::size_t> EventLedger::next_repost() {
  std::lock_guard lock(mutex_);
  if (reposts_.empty()) return std::nullopt;
  const auto post = reposts_.back();
  reposts_.pop_back();
  return post;
}

std::size_t EventLedger::reposts_waiting() const {
  std::lock_guard lock(mutex_);
  return reposts_.size();
}

void EventLedger::with_events(const std::function<void(std::map<std::string, PostedEvent>&)>& fn) {
  std::lock_guard lock(mutex_);
  fn(events_);
}

std::vector<std::vector<std::string>> EventLedger::batches() const {
  std::lock_guard lock(mutex_);
  std::vector<std::vector<std::string>> out;
  for (const auto& p : posts_) {
    if (p.batch) out.push_back(p.ids);
  }
  return out;
}

void EventLedger::add_problem(std::string problem) {
  std::lock_guard lock(mutex_);
  add_problem_locked(std::move(problem));
}

void EventLedger::add_problem_locked(std::string problem) {
  ++problem_count_;
  if (problems_.size() < kProblemsKept) problems_.push_back(std::move(problem));
}

std::vector<std::string> EventLedger::problems() const {
  std::lock_guard lock(mutex_);
  return problems_;
}

std::size_t EventLedger::problem_count() const {
  std::lock_guard lock(mutex_);
  return problem_count_;
}

std::size_t EventLedger::event_count() const {
  std::lock_guard lock(mutex_);
  return events_.size();
}

std::size_t EventLedger::acked_count() const {
  std::lock_guard lock(mutex_);
  return acked_;
}

std::size_t EventLedger::posts_sent() const {
  std::lock_guard lock(mutex_);
  return posts_.size();
}

std::size_t EventLedger::answers_200() const {
  std::lock_guard lock(mutex_);
  return answers_200_;
}

std::size_t EventLedger::overloaded() const {
  std::lock_guard lock(mutex_);
  return overloaded_;
}

}  // namespace relay::torture
