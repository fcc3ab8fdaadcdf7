#include "SoakLedger.hpp"

#include <algorithm>
#include <bit>

namespace relay::soak {

const char* hook_name(Hook hook) {
  switch (hook) {
    case Hook::kFast:
      return "fast";
    case Hook::kSlow:
      return "slow";
    case Hook::kFail:
      return "fail500";
    case Hook::kRefused:
      return "refused";
    case Hook::kHang:
      return "hang";
  }
  return "?";
}

EventKind event_kind(std::uint64_t seq) {
  // 1 in 4,000 (0.5/s at 2,000/s) goes to the endpoint that never answers: each of its
  // attempts holds a delivery slot for the whole attempt timeout, so more would need more
  // per-webhook concurrency than a real deployment gives one receiver.
  if (seq % 4000 == 1) return {"sla.breached", 0};
  switch (seq % 40) {
    case 36:
    case 37:
      return {"message.created", 0x3};  // 5%: fast and slow
    case 38:
      return {"ticket.updated", 0};  // 2.5%: always 500
    case 39:
      return {"customer.created", 0};  // 2.5%: connection refused
    default:
      return {"ticket.created", 0x1};  // 90%: fast
  }
}

SoakLedger::SoakLedger(std::uint64_t capacity) : state_(capacity, 0) {}

void SoakLedger::on_sent() {
  std::lock_guard lock(mutex_);
  ++window_.sent;
}

void SoakLedger::on_answer(std::uint64_t seq, unsigned status, std::int64_t latency_ns,
                           std::int64_t now_ns) {
  std::lock_guard lock(mutex_);
  window_.intake.record(latency_ns);
  if (status / 100 != 2) {
    ++window_.non_2xx;
    ++window_.statuses[status];
    if (seq < state_.size()) state_[seq] |= kNotAcked;
    return;
  }
  ++window_.acked;
  ++acked_total_;
  if (seq >= state_.size()) return;
  auto& s = state_[seq];
  const std::uint8_t expected = event_kind(seq).healthy_mask;
  if ((s & kAcked) != 0) return;  // a second 2xx for the same id cannot happen here; be safe
  s |= kAcked;
  const int owed = std::popcount(static_cast<std::uint8_t>(expected & ~s));
  expected_total_ += static_cast<std::uint64_t>(std::popcount(expected));
  window_.healthy_due += static_cast<std::uint64_t>(std::popcount(expected));
  if (owed > 0) {
    outstanding_ += static_cast<std::uint64_t>(owed);
    ack_ns_[seq] = now_ns;
  }
}

void SoakLedger::on_transport_error(std::uint64_t seq) {
  std::lock_guard lock(mutex_);
  ++window_.transport_errors;
  if (seq < state_.size()) state_[seq] |= kNotAcked;
}

void SoakLedger::on_receipt(Hook hook, std::int64_t seq, std::int64_t now_ns) {
  std::lock_guard lock(mutex_);
  ++window_.requests[static_cast<std::size_t>(hook)];
  if (hook != Hook::kFast && hook != Hook::kSlow) return;
  if (seq < 0 || static_cast<std::uint64_t>(seq) >= state_.size()) return;
  const auto n = static_cast<std::uint64_t>(seq);
  auto& s = state_[n];
  const auto bit = static_cast<std::uint8_t>(1U << static_cast<unsigned>(hook));
  if ((s & bit) != 0) {
    ++window_.duplicates;
    return;
  }
  s |= bit;
  if ((s & kNotAcked) != 0) {
    ++window_.unacked;
    return;
  }
  if ((s & kAcked) == 0) {
    // relayd committed the event and delivered it before the client got to read the 202: the
    // 202 → receipt latency is below zero; counted as 0 (and the case counted), and
    // on_answer() will not expect this receipt again.
    ++window_.before_ack;
    ++window_.healthy_delivered;
    window_.e2e.record(0);
    return;
  }
  ++window_.healthy_delivered;
  const auto it = ack_ns_.find(n);
  if (it == ack_ns_.end()) return;
  window_.e2e.record(now_ns - it->second);
  --outstanding_;
  const std::uint8_t expected = event_kind(n).healthy_mask;
  if ((expected & ~s & kHookBits) == 0) ack_ns_.erase(it);
}

WindowStats SoakLedger::take_window() {
  std::lock_guard lock(mutex_);
  WindowStats out = window_;
  window_ = WindowStats{};
  return out;
}

std::uint64_t SoakLedger::healthy_outstanding() const {
  std::lock_guard lock(mutex_);
  return outstanding_;
}

std::uint64_t SoakLedger::acked_total() const {
  std::lock_guard lock(mutex_);
  return acked_total_;
}

std::uint64_t SoakLedger::healthy_expected_total() const {
  std::lock_guard lock(mutex_);
  return expected_total_;
}

std::vector<std::uint64_t> SoakLedger::missing(std::size_t max) const {
  std::lock_guard lock(mutex_);
  std::vector<std::uint64_t> out;
  for (const auto& [seq, ns] : ack_ns_) {
    out.push_back(seq);
    if (out.size() >= max) break;
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace relay::soak
