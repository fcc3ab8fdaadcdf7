#include "FlakyReceiver.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

namespace relay::torture {
namespace {

std::string hmac_sha256_hex(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
           &len) == nullptr) {
    throw std::runtime_error("HMAC failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex += kHex[mac[i] >> 4];
    hex += kHex[mac[i] & 0xf];
  }
  return hex;
}

}  // namespace

FlakyReceiver::FlakyReceiver(const relay::test::CertAndKey& certificate,
                             std::map<std::string, std::string> secrets, std::uint64_t seed)
    : secrets_(std::move(secrets)), rng_(seed) {
  relay::test::ReceiverOptions options;
  options.tls = true;
  options.certificate = certificate;
  receiver_ = std::make_unique<relay::test::TestReceiver>(options);
  receiver_->set_handler([this](const relay::test::RecordedRequest& r) { return on_request(r); });
}

FlakyReceiver::~FlakyReceiver() {
  receiver_->stop();
}

std::string FlakyReceiver::url(const std::string& webhook) const {
  return receiver_->url("/hook/" + webhook);
}

relay::test::Reply FlakyReceiver::on_request(const relay::test::RecordedRequest& request) {
  const auto arrived = std::chrono::steady_clock::now();
  Received seen;
  seen.delivery_id = request.header("X-Relay-Delivery");
  seen.event_header = request.header("X-Relay-Event");
  seen.reused_connection = request.sequence_on_connection > 0;
  const std::string prefix = "/hook/";
  if (request.target.rfind(prefix, 0) == 0) seen.webhook = request.target.substr(prefix.size());
  if (const auto secret = secrets_.find(seen.webhook); secret != secrets_.end()) {
    seen.signature_ok = request.header("X-Relay-Signature") ==
                        "sha256=" + hmac_sha256_hex(secret->second, request.body);
  }
  const auto body = nlohmann::json::parse(request.body, nullptr, false);
  if (body.is_object() && body.contains("id") && body["id"].is_string()) {
    seen.event_id = body["id"].get<std::string>();
  }

  relay::test::Reply reply;
  if (!healthy_) {
    std::uniform_int_distribution<int> percent(0, 99);
    const int speed = percent(rng_);
    const int delay_ms = speed < 60   ? std::uniform_int_distribution<int>(0, 5)(rng_)
                         : speed < 90 ? std::uniform_int_distribution<int>(5, 50)(rng_)
                                      : std::uniform_int_distribution<int>(50, 300)(rng_);
    reply.delay = std::chrono::milliseconds(delay_ms);
    const int fate = percent(rng_);
    const bool doomed = body.is_object() && body.contains("data") && body["data"].is_object() &&
                        body["data"].value("doom", false);
    if (doomed) {
      reply.status = 503;
      reply.body = "doomed";
    } else if (fate < 82) {
      reply.status = 200;
    } else if (fate < 84) {
      reply.status = 200;
      reply.close_after_response = true;
    } else if (fate < 92) {
      reply.status = std::array<int, 3>{500, 502, 503}[static_cast<std::size_t>(fate % 3)];
      reply.body = "flaky";
    } else {
      reply.close_without_response = true;
    }
  }
  seen.answer = reply.close_without_response ? 0 : reply.status;

  std::lock_guard lock(mutex_);
  const auto [first, inserted] = first_bodies_.try_emplace(seen.delivery_id, request.body);
  seen.same_body_as_first = inserted || first->second == request.body;
  // The reply's delay timer starts after this returns, so the answer leaves no earlier than
  // arrived + delay; a request of the same delivery before that overlaps with this one.
  auto [due, fresh] = answer_due_.try_emplace(seen.delivery_id, arrived + reply.delay);
  if (!fresh) {
    if (arrived < due->second) overlapping_.push_back(seen.delivery_id);
    due->second = arrived + reply.delay;
  }
  log_.push_back(std::move(seen));
  return reply;
}

std::size_t FlakyReceiver::settle(std::chrono::milliseconds timeout, bool& settled) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  settled = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (receiver_->open_connections() == 0) {
      settled = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::lock_guard lock(mutex_);
  // TestReceiver records every request before it asks the handler, on one thread: with no
  // connection left, both counts must agree. Its own copies (whole bodies) are then dropped.
  if (settled) {
    const std::size_t recorded = forgotten_ + receiver_->request_count();
    if (recorded != log_.size()) {
      throw std::runtime_error("receiver recorded " + std::to_string(recorded) +
                               " requests but its handler saw " + std::to_string(log_.size()));
    }
    receiver_->clear_requests();
    forgotten_ = log_.size();
    // No connection, no answer owed: a killed relayd's request whose delay was still running
    // when its connection closed does not overlap with the next life's resend.
    answer_due_.clear();
  }
  return log_.size();
}

std::vector<Received> FlakyReceiver::range(std::size_t from, std::size_t to) const {
  std::lock_guard lock(mutex_);
  to = std::min(to, log_.size());
  if (from >= to) return {};
  return {log_.begin() + static_cast<std::ptrdiff_t>(from),
          log_.begin() + static_cast<std::ptrdiff_t>(to)};
}

std::size_t FlakyReceiver::size() const {
  std::lock_guard lock(mutex_);
  return log_.size();
}

std::vector<std::string> FlakyReceiver::overlapping() const {
  std::lock_guard lock(mutex_);
  return overlapping_;
}

std::map<std::string, std::string> FlakyReceiver::first_bodies() const {
  std::lock_guard lock(mutex_);
  return first_bodies_;
}

}  // namespace relay::torture
