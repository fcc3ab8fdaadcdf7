#include "relay/server/Intake.hpp"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <utility>

#include <nlohmann/json.hpp>

#include "IntakeFastPath.hpp"
#include "relay/common/Ascii.hpp"
#include "relay/common/EventTypes.hpp"
#include "relay/common/Ids.hpp"
#include "relay/common/Suggest.hpp"

namespace relay::server {

namespace {

using OrderedJson = nlohmann::ordered_json;

constexpr auto kReplaceInvalidUtf8 = OrderedJson::error_handler_t::replace;

/// True for a byte that a JSON string holds as is: nlohmann's dump (ensure_ascii off) escapes
/// only '"', '\\' and control characters below 0x20.
constexpr bool plain_byte(unsigned char c) {
  return c >= 0x20 && c != '"' && c != '\\';
}

using detail::append_escaped;

/// A JSON string literal (quotes, escapes) for `text`, which may be any bytes (a header, an
/// id): plain ASCII is quoted directly, anything else goes through nlohmann (invalid UTF-8 is
/// replaced).
std::string quote(std::string_view text) {
  const bool plain_ascii = std::all_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return plain_byte(u) && u < 0x80;
  });
  if (plain_ascii) {
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    out += text;
    out += '"';
    return out;
  }
  return OrderedJson(std::string(text)).dump(-1, ' ', false, kReplaceInvalidUtf8);
}

/// Appends `value` compactly, the same text as value.dump(-1, ' ', false, replace) for a parsed
/// document; strings and containers are written here, other scalars by nlohmann (a float's
/// shortest form is nlohmann's own).
void append_compact(std::string& out, const OrderedJson& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, item] : value.items()) {
        if (!first) out += ',';
        first = false;
        append_escaped(out, key);
        out += ':';
        append_compact(out, item);
      }
      out += '}';
      break;
    }
    case nlohmann::json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& item : value) {
        if (!first) out += ',';
        first = false;
        append_compact(out, item);
      }
      out += ']';
      break;
    }
    case nlohmann::json::value_t::string:
      append_escaped(out, value.get_ref<const std::string&>());
      break;
    case nlohmann::json::value_t::boolean:
      out += value.get<bool>() ? "true" : "false";
      break;
    case nlohmann::json::value_t::null:
      out += "null";
      break;
    case nlohmann::json::value_t::number_integer:
      out += std::to_string(value.get<std::int64_t>());
      break;
    case nlohmann::json::value_t::number_unsigned:
      out += std::to_string(value.get<std::uint64_t>());
      break;
    default:
      out += value.dump(-1, ' ', false, kReplaceInvalidUtf8);
      break;
  }
}

std::string compact(const OrderedJson& value) {
  std::string out;
  append_compact(out, value);
  return out;
}

using common::trim_ows;

/// Deepest nesting of arrays/objects, counted outside strings; stops counting once `limit` is
/// exceeded. Malformed input is left for the parser to report.
std::size_t json_depth(std::string_view body, std::size_t limit) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        deepest = std::max(deepest, ++depth);
        if (deepest > limit) return deepest;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return deepest;
}

IntakeError make_error(int status, std::string code, std::string message,
                       std::optional<std::size_t> index = std::nullopt) {
  return IntakeError{status, std::move(code), std::move(message), index};
}

/// Why `body` (which did not parse) is refused. Valid JSON text with a number no double can
/// hold (1e400) is not "not valid JSON": say which number. Only called for refused bodies, so
/// parsing once more costs nothing in the normal case.
std::string invalid_json_message(std::string_view body) {
  if (body.find('\0') == std::string_view::npos) {
    try {
      [[maybe_unused]] const auto again = OrderedJson::parse(body);
    } catch (const nlohmann::json::out_of_range& e) {
      if (e.id == 406) {  // "number overflow parsing '<token>'"
        std::string what = e.what();
        const auto open = what.find('\'');
        const auto close = what.rfind('\'');
        std::string number = open != std::string::npos && close > open
                                 ? what.substr(open + 1, close - open - 1)
                                 : std::string();
        if (number.size() > 40) number = number.substr(0, 40) + "...";
        return "the number " + number +
               " is out of range (JSON numbers must fit a 64-bit float, about ±1.8e308)";
      }
    } catch (const nlohmann::json::exception&) {
    }
  }
  return "the body is not valid JSON";
}

std::string describe_type(const OrderedJson& value) {
  return value.type_name();
}

/// Validates one event object. On success appends to `out`.
std::optional<IntakeError> validate_event(const OrderedJson& item, std::optional<std::size_t> index,
                                          std::vector<ValidatedEvent>& out) {
  const std::string where = index ? "events[" + std::to_string(*index) + "]" : "the body";
  if (!item.is_object()) {
    return make_error(400, "invalid_json",
                      where + " must be a JSON object, not " + describe_type(item), index);
  }
  const OrderedJson* event = nullptr;
  const OrderedJson* data = nullptr;
  const OrderedJson* id = nullptr;
  // Field types first (400), then unknown fields (422, catches typos), then presence and
  // values (422).
  for (const auto& [key, value] : item.items()) {
    if (key == "event") {
      if (!value.is_string()) {
        return make_error(400, "invalid_json",
                          "\"event\" must be a string, not " + describe_type(value), index);
      }
      event = &value;
    } else if (key == "data") {
      if (!value.is_object()) {
        return make_error(400, "invalid_json",
                          "\"data\" must be a JSON object, not " + describe_type(value), index);
      }
      data = &value;
    } else if (key == "id") {
      if (!value.is_string()) {
        return make_error(400, "invalid_json",
                          "\"id\" must be a string, not " + describe_type(value), index);
      }
      id = &value;
    }
  }
  for (const auto& [key, value] : item.items()) {
    if (key != "event" && key != "data" && key != "id") {
      std::string message = "unknown field " + quote(key) + " (allowed: event, data, id)";
      if (key == "events" && !index) message += "; send several events to /v1/events/batch";
      return make_error(422, "invalid_event", std::move(message), index);
    }
  }
  if (event == nullptr) return make_error(422, "invalid_event", "\"event\" is required", index);
  if (data == nullptr) return make_error(422, "invalid_event", "\"data\" is required", index);
  const auto& type = event->get_ref<const std::string&>();
  if (!is_known_event_type(type)) {
    const std::vector<std::string_view> known(common::kEventTypes.begin(),
                                              common::kEventTypes.end());
    return make_error(422, "unknown_event_type",
                      "unknown event type " + quote(type) + common::did_you_mean(type, known),
                      index);
  }
  std::string id_text;
  if (id != nullptr) {
    id_text = id->get_ref<const std::string&>();
    if (!is_valid_event_id(id_text)) {
      return make_error(422, "invalid_event", "\"id\" must be 1-128 characters of A-Za-z0-9_.:-",
                        index);
    }
  }
  out.push_back(ValidatedEvent{std::move(id_text), type, compact(*data)});
  return std::nullopt;
}

}  // namespace

bool is_valid_event_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxEventIdLength) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
  });
}

bool is_json_content_type(std::string_view content_type) {
  const auto semicolon = content_type.find(';');
  const auto media = trim_ows(content_type.substr(0, semicolon));
  constexpr std::string_view kJson = "application/json";
  if (media.size() != kJson.size()) return false;
  for (std::size_t i = 0; i < media.size(); ++i) {
    if (common::to_lower(media[i]) != kJson[i]) return false;
  }
  return true;
}

std::string IntakeError::to_json() const {
  return error_json(code, message, index);
}

std::string error_json(std::string_view code, std::string_view message,
                       std::optional<std::size_t> index) {
  std::string out = "{\"error\":{\"code\":" + quote(code) + ",\"message\":" + quote(message);
  if (index) out += ",\"index\":" + std::to_string(*index);
  out += "}}";
  return out;
}

IntakeParseResult parse_intake(std::optional<std::string_view> content_type, std::string_view body,
                               IntakeKind kind) {
  IntakeParseResult result;
  if (!content_type) {
    result.error = make_error(415, "unsupported_media_type",
                              "Content-Type must be application/json (header missing)");
    return result;
  }
  if (!is_json_content_type(*content_type)) {
    result.error = make_error(
        415, "unsupported_media_type",
        "Content-Type must be application/json, not " + quote(content_type->substr(0, 100)));
    return result;
  }
  // The common case, a valid body, is read by simdjson; everything else (and every refusal) by
  // the reference reading below, so answers other than 202 are exactly what they were.
  if (auto events = detail::fast_parse_intake(body, kind)) {
    result.events = std::move(*events);
    return result;
  }
  if (json_depth(body, kMaxJsonDepth) > kMaxJsonDepth) {
    result.error =
        make_error(400, "invalid_json",
                   "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return result;
  }
  OrderedJson doc = OrderedJson::parse(body, nullptr, /*allow_exceptions=*/false);
  // nlohmann's lexer takes a NUL byte for the end of input and ignores what follows it; a NUL is
  // never valid in JSON text (found by tests/fuzz/intake_fuzz.cpp).
  if (doc.is_discarded() || body.find('\0') != std::string_view::npos) {
    result.error = make_error(400, "invalid_json", invalid_json_message(body));
    return result;
  }
  if (!doc.is_object()) {
    result.error = make_error(400, "invalid_json",
                              "the body must be a JSON object, not " + describe_type(doc));
    return result;
  }

  std::vector<ValidatedEvent> events;
  if (kind == IntakeKind::kSingle) {
    if (auto error = validate_event(doc, std::nullopt, events)) {
      result.error = std::move(error);
      return result;
    }
    result.events = std::move(events);
    return result;
  }

  const OrderedJson* items = nullptr;
  for (const auto& [key, value] : doc.items()) {
    if (key == "events") {
      if (!value.is_array()) {
        result.error = make_error(400, "invalid_json",
                                  "\"events\" must be an array, not " + describe_type(value));
        return result;
      }
      items = &value;
    }
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "events") {
      result.error =
          make_error(422, "invalid_event",
                     "unknown field " + quote(key) + " (a batch is {\"events\": [...]})");
      return result;
    }
  }
  if (items == nullptr) {
    result.error = make_error(422, "invalid_event", "\"events\" is required");
    return result;
  }
  if (items->empty() || items->size() > kMaxBatchEvents) {
    result.error = make_error(422, "invalid_event",
                              "\"events\" must hold 1 to " + std::to_string(kMaxBatchEvents) +
                                  " events, not " + std::to_string(items->size()));
    return result;
  }
  events.reserve(items->size());
  for (std::size_t i = 0; i < items->size(); ++i) {
    if (auto error = validate_event((*items)[i], i, events)) {
      result.error = std::move(error);
      return result;
    }
    // Two items with one id in the same batch: the store could only keep the first, so the
    // answer could not echo both; refuse it instead of guessing.
    const auto& id = events.back().id;
    if (!id.empty()) {
      for (std::size_t j = 0; j + 1 < events.size(); ++j) {
        if (events[j].id == id) {
          result.error = make_error(
              422, "invalid_event",
              "id " + quote(id) + " is used by events[" + std::to_string(j) + "] too", i);
          return result;
        }
      }
    }
  }
  result.events = std::move(events);
  return result;
}

namespace {

/// build_payload with the time already written (a batch's events share one).
std::string build_payload_at(std::string_view id, std::string_view event_type,
                             std::string_view created_at_json, std::string_view data_json) {
  std::string out;
  out.reserve(data_json.size() + id.size() + event_type.size() + 64);
  out += "{\"id\":";
  out += quote(id);
  out += ",\"event\":";
  out += quote(event_type);
  out += ",\"created_at\":";
  out += created_at_json;
  out += ",\"data\":";
  out += data_json;
  out += '}';
  return out;
}

}  // namespace

std::string build_payload(std::string_view id, std::string_view event_type,
                          common::TimePoint created_at, std::string_view data_json) {
  return build_payload_at(id, event_type, quote(common::format_rfc3339_s(created_at)), data_json);
}

std::vector<store::NewEvent> build_new_events(std::vector<ValidatedEvent> events,
                                              const config::Config& config, common::TimePoint now) {
  std::vector<store::NewEvent> out;
  out.reserve(events.size());
  const auto created_at_json = quote(common::format_rfc3339_s(now));
  for (auto& event : events) {
    store::NewEvent item;
    item.id = event.id.empty() ? common::new_event_id() : std::move(event.id);
    item.created_at = now;
    item.payload = build_payload_at(item.id, event.event_type, created_at_json, event.data);
    for (const auto& webhook : config.webhooks) {
      if (!webhook.matches(event.event_type)) continue;
      item.deliveries.push_back(store::NewDelivery{
          common::new_delivery_id(), webhook.id,
          webhook.enabled ? store::DeliveryStatus::kPending : store::DeliveryStatus::kPaused,
          webhook.max_queued});
    }
    item.event_type = std::move(event.event_type);
    out.push_back(std::move(item));
  }
  return out;
}

namespace {

/// The last time written into a receipt: a batch's receipts share one.
struct TimeText {
  std::optional<common::TimePoint> at;
  std::string json;
  const std::string& of(common::TimePoint t) {
    if (at != t) {
      at = t;
      json = quote(common::format_rfc3339_s(t));
    }
    return json;
  }
};

void append_receipt(std::string& out, const store::EventReceipt& receipt, TimeText& time) {
  out += "{\"id\":";
  out += quote(receipt.id);
  out += ",\"event\":";
  out += quote(receipt.event_type);
  out += ",\"created_at\":";
  out += time.of(receipt.created_at);
  out += ",\"deliveries\":[";
  bool first = true;
  for (const auto& [delivery_id, webhook_id] : receipt.deliveries) {
    if (!first) out += ',';
    first = false;
    out += "{\"id\":";
    out += quote(delivery_id);
    out += ",\"webhook\":";
    out += quote(webhook_id);
    out += '}';
  }
  out += "]}";
}

}  // namespace

std::string receipt_json(const store::EventReceipt& receipt) {
  std::string out;
  TimeText time;
  append_receipt(out, receipt, time);
  return out;
}

std::string batch_receipt_json(const std::vector<store::EventReceipt>& receipts) {
  std::string out = "{\"events\":[";
  TimeText time;
  bool first = true;
  for (const auto& receipt : receipts) {
    if (!first) out += ',';
    first = false;
    append_receipt(out, receipt, time);
  }
  out += "]}";
  return out;
}

}  // namespace relay::server
