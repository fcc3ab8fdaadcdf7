// libFuzzer target for the intake request path, in memory (SPEC §3):
//   raw HTTP bytes -> Beast request parser (header/body limits) -> routing -> parse_intake ->
//   build_new_events (the store's write request) -> receipt JSON.
// Input forms:
//   - a first line containing " HTTP/" : a raw HTTP/1.x request ("POST /v1/events HTTP/1.1 ...");
//   - otherwise "CONTENT-TYPE\nBODY": the first line is the Content-Type, the rest the body, run
//     as both /v1/events and /v1/events/batch; without a newline there is no Content-Type.
// Every result is checked against invariants that subscribers and clients rely on.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>

#include "../../src/server/Framing.hpp"
#include "FuzzCheck.hpp"
#include "relay/common/Time.hpp"
#include "relay/config/Config.hpp"
#include "relay/server/Intake.hpp"
#include "relay/store/Types.hpp"

namespace {

namespace http = boost::beast::http;
using namespace std::chrono_literals;
using OrderedJson = nlohmann::ordered_json;
using relay::server::IntakeKind;

// 2025-01-15T10:30:00Z, fixed so that a finding reproduces.
const relay::common::TimePoint kNow{1736937000000ms};
constexpr std::string_view kNowText = "2025-01-15T10:30:00Z";
// Small limits so that the fuzzer reaches them with short inputs (the server's are 16 KiB of
// header and max_body_bytes of body, enforced by the same parser calls).
constexpr std::uint32_t kHeaderLimit = 2048;
constexpr std::uint64_t kBodyLimit = 8192;

relay::config::WebhookConfig webhook(std::string id, std::vector<std::string> events, bool enabled,
                                     std::size_t max_queued) {
  relay::config::WebhookConfig w;
  w.id = std::move(id);
  w.url = "https://" + w.id + ".example.com/hook";
  w.secret = "fuzz-secret";
  w.events = std::move(events);
  w.enabled = enabled;
  w.max_queued = max_queued;
  return w;
}

const relay::config::Config& fuzz_config() {
  static const relay::config::Config config = [] {
    relay::config::Config c;
    c.webhooks.push_back(webhook("crm", {"ticket.created", "message.*"}, true, 10000));
    c.webhooks.push_back(webhook("archive", {"*"}, false, 5));
    c.webhooks.push_back(webhook("pager", {"sla.breached", "sla.warning"}, true, 100));
    return c;
  }();
  return config;
}

/// An independent reading of the subscription rules (docs/configuration.md), to cross-check
/// WebhookConfig::matches.
bool subscribed(const relay::config::WebhookConfig& w, std::string_view type) {
  return std::any_of(w.events.begin(), w.events.end(), [&](const std::string& pattern) {
    if (pattern == "*") return true;
    if (pattern.ends_with(".*")) {
      const auto group = std::string_view(pattern).substr(0, pattern.size() - 1);  // "message."
      return type.starts_with(group) && type.size() > group.size();
    }
    return pattern == type;
  });
}

std::vector<std::string> keys_of(const OrderedJson& object) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.push_back(key);
  return keys;
}

OrderedJson parse_json(std::string_view text) {
  auto doc = OrderedJson::parse(text, nullptr, /*allow_exceptions=*/false);
  RELAY_FUZZ_CHECK(!doc.is_discarded());
  return doc;
}

std::size_t depth_of(const OrderedJson& value) {
  std::size_t deepest = 0;
  if (value.is_object() || value.is_array()) {
    for (const auto& child : value) deepest = std::max(deepest, depth_of(child));
    return deepest + 1;
  }
  return 0;
}

void check_error(const relay::server::IntakeError& error, IntakeKind kind,
                 std::optional<std::string_view> content_type) {
  const int s = error.status;
  RELAY_FUZZ_CHECK(s == 400 || s == 413 || s == 415 || s == 422);
  if (s == 400) RELAY_FUZZ_CHECK(error.code == "invalid_json");
  if (s == 413) RELAY_FUZZ_CHECK(error.code == "payload_too_large");
  if (s == 415) RELAY_FUZZ_CHECK(error.code == "unsupported_media_type");
  if (s == 422) {
    RELAY_FUZZ_CHECK(error.code == "invalid_event" || error.code == "unknown_event_type");
  }
  const bool json_type =
      content_type.has_value() && relay::server::is_json_content_type(*content_type);
  RELAY_FUZZ_CHECK((s == 415) == !json_type);
  RELAY_FUZZ_CHECK(!error.message.empty());
  if (kind == IntakeKind::kSingle) RELAY_FUZZ_CHECK(!error.index.has_value());
  if (error.index) RELAY_FUZZ_CHECK(*error.index < relay::server::kMaxBatchEvents);

  // The error body is JSON that gives back exactly the code, message and index.
  const auto doc = parse_json(error.to_json());
  RELAY_FUZZ_CHECK(keys_of(doc) == std::vector<std::string>{"error"});
  const auto& e = doc["error"];
  RELAY_FUZZ_CHECK(e.is_object());
  std::vector<std::string> expected_keys = {"code", "message"};
  if (error.index) expected_keys.emplace_back("index");
  RELAY_FUZZ_CHECK(keys_of(e) == expected_keys);
  RELAY_FUZZ_CHECK(e["code"] == error.code);
  RELAY_FUZZ_CHECK(e["message"] == error.message);
  if (error.index) RELAY_FUZZ_CHECK(e["index"] == *error.index);
}

/// The client's item i: the body itself (single) or events[i] (batch).
const OrderedJson& item_at(const OrderedJson& body, IntakeKind kind, std::size_t i) {
  if (kind == IntakeKind::kSingle) return body;
  return body["events"][i];
}

void check_receipts(const std::vector<relay::store::NewEvent>& stored) {
  std::vector<relay::store::EventReceipt> receipts;
  for (const auto& event : stored) {
    relay::store::EventReceipt receipt;
    receipt.id = event.id;
    receipt.event_type = event.event_type;
    receipt.created_at = event.created_at;
    for (const auto& d : event.deliveries) receipt.deliveries.emplace_back(d.id, d.webhook_id);
    const auto doc = parse_json(relay::server::receipt_json(receipt));
    RELAY_FUZZ_CHECK(keys_of(doc) ==
                     (std::vector<std::string>{"id", "event", "created_at", "deliveries"}));
    RELAY_FUZZ_CHECK(doc["id"] == event.id);
    RELAY_FUZZ_CHECK(doc["event"] == event.event_type);
    RELAY_FUZZ_CHECK(doc["created_at"] == kNowText);
    RELAY_FUZZ_CHECK(doc["deliveries"].size() == event.deliveries.size());
    for (std::size_t i = 0; i < event.deliveries.size(); ++i) {
      const auto& d = doc["deliveries"][i];
      RELAY_FUZZ_CHECK(keys_of(d) == (std::vector<std::string>{"id", "webhook"}));
      RELAY_FUZZ_CHECK(d["id"] == event.deliveries[i].id);
      RELAY_FUZZ_CHECK(d["webhook"] == event.deliveries[i].webhook_id);
    }
    receipts.push_back(std::move(receipt));
  }
  const auto batch = parse_json(relay::server::batch_receipt_json(receipts));
  RELAY_FUZZ_CHECK(keys_of(batch) == std::vector<std::string>{"events"});
  RELAY_FUZZ_CHECK(batch["events"].size() == receipts.size());
  for (std::size_t i = 0; i < receipts.size(); ++i) {
    RELAY_FUZZ_CHECK(batch["events"][i] == parse_json(relay::server::receipt_json(receipts[i])));
  }
}

void check_accepted(const relay::server::IntakeParseResult& result, IntakeKind kind,
                    std::optional<std::string_view> content_type, std::string_view body) {
  RELAY_FUZZ_CHECK(content_type && relay::server::is_json_content_type(*content_type));
  const auto& events = result.events;
  RELAY_FUZZ_CHECK(!events.empty());
  if (kind == IntakeKind::kSingle) RELAY_FUZZ_CHECK(events.size() == 1);
  RELAY_FUZZ_CHECK(events.size() <= relay::server::kMaxBatchEvents);

  const auto doc = parse_json(body);
  RELAY_FUZZ_CHECK(doc.is_object());
  if (kind == IntakeKind::kBatch) {
    RELAY_FUZZ_CHECK(keys_of(doc) == std::vector<std::string>{"events"});
    RELAY_FUZZ_CHECK(doc["events"].size() == events.size());
  }
  std::set<std::string> client_ids;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& event = events[i];
    const auto& item = item_at(doc, kind, i);
    RELAY_FUZZ_CHECK(relay::server::is_known_event_type(event.event_type));
    RELAY_FUZZ_CHECK(item["event"] == event.event_type);
    if (item.contains("id")) {
      RELAY_FUZZ_CHECK(item["id"] == event.id);
      RELAY_FUZZ_CHECK(relay::server::is_valid_event_id(event.id));
      RELAY_FUZZ_CHECK(client_ids.insert(event.id).second);  // unique within a batch
    } else {
      RELAY_FUZZ_CHECK(event.id.empty());
    }
    // data is the client's object, re-serialised compactly: same value, same key order.
    const auto data = parse_json(event.data);
    RELAY_FUZZ_CHECK(data.is_object());
    RELAY_FUZZ_CHECK(data == item["data"]);
    RELAY_FUZZ_CHECK(keys_of(data) == keys_of(item["data"]));
    // Byte for byte nlohmann's compact text, whichever reader (simdjson's fast path or the
    // nlohmann reference) took the body: the stored bytes never depend on the path.
    RELAY_FUZZ_CHECK(event.data ==
                     item["data"].dump(-1, ' ', false, OrderedJson::error_handler_t::replace));
  }

  // What the store is asked to write.
  const auto& config = fuzz_config();
  const auto stored = relay::server::build_new_events(events, config, kNow);
  RELAY_FUZZ_CHECK(stored.size() == events.size());
  std::set<std::string> event_ids;
  std::set<std::string> delivery_ids;
  for (std::size_t i = 0; i < stored.size(); ++i) {
    const auto& s = stored[i];
    const auto& v = events[i];
    RELAY_FUZZ_CHECK(s.event_type == v.event_type);
    RELAY_FUZZ_CHECK(s.created_at == kNow);
    if (v.id.empty()) {
      RELAY_FUZZ_CHECK(s.id.starts_with("evt_"));
      RELAY_FUZZ_CHECK(relay::server::is_valid_event_id(s.id));
    } else {
      RELAY_FUZZ_CHECK(s.id == v.id);
    }
    RELAY_FUZZ_CHECK(event_ids.insert(s.id).second);

    // The exact body subscribers get: {"id","event","created_at","data"} in that order.
    const auto payload = parse_json(s.payload);
    RELAY_FUZZ_CHECK(keys_of(payload) ==
                     (std::vector<std::string>{"id", "event", "created_at", "data"}));
    RELAY_FUZZ_CHECK(payload["id"] == s.id);
    RELAY_FUZZ_CHECK(payload["event"] == s.event_type);
    RELAY_FUZZ_CHECK(payload["created_at"] == kNowText);
    RELAY_FUZZ_CHECK(payload["data"] == parse_json(v.data));
    RELAY_FUZZ_CHECK(s.payload.ends_with(v.data + "}"));

    // One delivery per subscribed webhook, in config order, paused when the webhook is disabled.
    std::size_t d = 0;
    for (const auto& w : config.webhooks) {
      if (!subscribed(w, s.event_type)) continue;
      RELAY_FUZZ_CHECK(d < s.deliveries.size());
      const auto& delivery = s.deliveries[d++];
      RELAY_FUZZ_CHECK(delivery.webhook_id == w.id);
      RELAY_FUZZ_CHECK(delivery.id.starts_with("dlv_"));
      RELAY_FUZZ_CHECK(delivery_ids.insert(delivery.id).second);
      RELAY_FUZZ_CHECK(delivery.status == (w.enabled ? relay::store::DeliveryStatus::kPending
                                                     : relay::store::DeliveryStatus::kPaused));
      RELAY_FUZZ_CHECK(delivery.max_queued == w.max_queued);
    }
    RELAY_FUZZ_CHECK(d == s.deliveries.size());
  }
  check_receipts(stored);

  // A valid single event is also a valid one-item batch (when the extra nesting fits).
  if (kind == IntakeKind::kSingle && depth_of(doc) + 2 <= relay::server::kMaxJsonDepth) {
    // A byte order mark is only skipped at the start of a body, so it stays outside.
    constexpr std::string_view kBom = "\xEF\xBB\xBF";
    const auto start = body.starts_with(kBom) ? kBom.size() : 0;
    const std::string wrapped = std::string(body.substr(0, start)) + "{\"events\":[" +
                                std::string(body.substr(start)) + "]}";
    const auto batch = relay::server::parse_intake(content_type, wrapped, IntakeKind::kBatch);
    RELAY_FUZZ_CHECK(batch.ok());
    RELAY_FUZZ_CHECK(batch.events.size() == 1);
    RELAY_FUZZ_CHECK(batch.events[0].id == events[0].id);
    RELAY_FUZZ_CHECK(batch.events[0].event_type == events[0].event_type);
    RELAY_FUZZ_CHECK(batch.events[0].data == events[0].data);
  }
}

void run_intake(std::optional<std::string_view> content_type, std::string_view body,
                IntakeKind kind) {
  const auto result = relay::server::parse_intake(content_type, body, kind);
  if (!result.ok()) {
    RELAY_FUZZ_CHECK(result.events.empty());
    check_error(*result.error, kind, content_type);
    return;
  }
  check_accepted(result, kind, content_type, body);
}

/// Raw bytes through the same parser calls as HttpServer, then the same routing.
void run_http(std::string_view bytes) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(kBodyLimit);
  parser.eager(true);
  boost::beast::error_code ec;
  boost::asio::const_buffer buffer(bytes.data(), bytes.size());
  while (!parser.is_done()) {
    const auto n = parser.put(buffer, ec);
    RELAY_FUZZ_CHECK(n <= buffer.size());
    buffer += n;
    // need_more: the input ends before the message. Beast's contract is to call put() again only
    // with more bytes (its own read loop does); repeating the same bytes trips a Beast assertion.
    if (ec == http::error::need_more) break;
    if (ec) return;     // 400 / 413 / 431 in the server
    if (n == 0) break;  // no progress
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return;
  }
  const auto& message = parser.get();
  // The framing rule the server applies right after the header (RFC 9112 §6.3): a request is
  // only ever served with a Transfer-Encoding of exactly "chunked", which Beast then decodes;
  // anything else is 400 and close, so no byte after it runs as a smuggled next request.
  std::optional<std::string> transfer_encoding;
  for (const auto& field : message) {
    if (field.name() != http::field::transfer_encoding) continue;
    if (transfer_encoding) transfer_encoding->append(", ");
    transfer_encoding = transfer_encoding.value_or("").append(field.value());
  }
  if (relay::server::transfer_encoding_error(transfer_encoding)) return;
  RELAY_FUZZ_CHECK(parser.chunked() == transfer_encoding.has_value());
  relay::server::Request split;
  relay::server::split_target(message.target(), split);
  RELAY_FUZZ_CHECK(split.path.size() <= message.target().size());
  RELAY_FUZZ_CHECK(message.body().size() <= kBodyLimit);
  if (const auto length = parser.content_length()) {
    RELAY_FUZZ_CHECK(message.body().size() == *length);
  }
  if (message.method() != http::verb::post) return;
  const std::string_view target = message.target();
  const auto path = target.substr(0, target.find('?'));
  IntakeKind kind;
  if (path == "/v1/events") {
    kind = IntakeKind::kSingle;
  } else if (path == "/v1/events/batch") {
    kind = IntakeKind::kBatch;
  } else {
    return;
  }
  std::optional<std::string_view> content_type;
  if (const auto it = message.find(http::field::content_type); it != message.end()) {
    content_type = it->value();
  }
  run_intake(content_type, message.body(), kind);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto newline = input.find('\n');
  const auto first_line = input.substr(0, newline);
  if (first_line.find(" HTTP/") != std::string_view::npos) {
    run_http(input);
    return 0;
  }
  std::optional<std::string_view> content_type;
  std::string_view body = input;
  if (newline != std::string_view::npos) {
    content_type = first_line;
    body = input.substr(newline + 1);
  }
  run_intake(content_type, body, IntakeKind::kSingle);
  run_intake(content_type, body, IntakeKind::kBatch);
  return 0;
}
