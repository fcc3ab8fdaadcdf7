// Intake's fast path: simdjson's DOM reading of a valid body (issue 20). nlohmann's lexer reads
// a byte at a time and its DOM allocates per value: that was the top relayd symbol at intake.
// Anything this path is not sure of goes back to the reference reading in Intake.cpp.
#include "IntakeFastPath.hpp"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <unordered_set>

#include <nlohmann/json.hpp>

namespace relay::server::detail {

namespace {

namespace dom = simdjson::dom;

/// Bodies up to this size are read by the I/O thread's own parser, which keeps its buffers
/// (about 11 bytes per body byte); larger ones get a parser of their own, freed after, so a
/// 1 MiB body does not leave 11 MB behind on every I/O thread.
constexpr std::size_t kKeptParserBytes = 64 * 1024;

/// simdjson's own depth bound, a little above ours: append_value applies kMaxJsonDepth exactly,
/// counted like json_depth (the body's own object is level 1).
constexpr std::size_t kParserMaxDepth = kMaxJsonDepth + 2;

/// Objects up to this many keys are checked for duplicates pairwise, larger ones with a set.
constexpr std::size_t kPairwiseKeys = 16;

constexpr bool plain_byte(unsigned char c) {
  return c >= 0x20 && c != '"' && c != '\\';
}

/// True when none of the eight bytes at `p` needs escaping (SWAR: a byte below 0x20, '"' or
/// '\\' sets its high bit in one of the three masks; bytes of 0x80 and above never do).
bool plain_word(const char* p) {
  constexpr std::uint64_t kOnes = 0x0101010101010101;
  constexpr std::uint64_t kHigh = 0x8080808080808080;
  std::uint64_t x = 0;
  std::memcpy(&x, p, sizeof x);
  const auto zero_byte = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const std::uint64_t control = (x - 0x20 * kOnes) & ~x & kHigh;
  return (control | zero_byte(x ^ ('"' * kOnes)) | zero_byte(x ^ ('\\' * kOnes))) == 0;
}

void append_integer(std::string& out, auto value) {
  std::array<char, 24> digits{};
  const auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), value);
  out.append(digits.data(), end);
}

/// Duplicate keys in one object: nlohmann keeps the first key's place and the last value,
/// which the reference reading reproduces; this path declines instead.
class KeySeen {
 public:
  bool insert(std::string_view key) {
    if (count_ < kPairwiseKeys) {
      for (std::size_t i = 0; i < count_; ++i) {
        if (small_[i] == key) return false;
      }
      small_[count_++] = key;
      return true;
    }
    if (large_.empty()) large_.insert(small_.begin(), small_.end());
    return large_.insert(key).second;
  }

 private:
  std::array<std::string_view, kPairwiseKeys> small_{};
  std::size_t count_ = 0;
  std::unordered_set<std::string_view> large_;
};

/// Appends `value` compactly, the text nlohmann's dump gives for the same JSON; `depth` is the
/// nesting level `value` opens if it is a container. False: not for this path.
bool append_value(std::string& out, dom::element value, std::size_t depth) {
  switch (value.type()) {
    case dom::element_type::OBJECT: {
      if (depth > kMaxJsonDepth) return false;
      out += '{';
      KeySeen keys;
      bool first = true;
      for (const dom::key_value_pair field : dom::object(value)) {
        if (!keys.insert(field.key)) return false;
        if (!first) out += ',';
        first = false;
        append_escaped(out, field.key);
        out += ':';
        if (!append_value(out, field.value, depth + 1)) return false;
      }
      out += '}';
      return true;
    }
    case dom::element_type::ARRAY: {
      if (depth > kMaxJsonDepth) return false;
      out += '[';
      bool first = true;
      for (const dom::element item : dom::array(value)) {
        if (!first) out += ',';
        first = false;
        if (!append_value(out, item, depth + 1)) return false;
      }
      out += ']';
      return true;
    }
    case dom::element_type::STRING:
      append_escaped(out, std::string_view(value));
      return true;
    case dom::element_type::INT64:
      append_integer(out, std::int64_t(value));
      return true;
    case dom::element_type::UINT64:
      append_integer(out, std::uint64_t(value));
      return true;
    case dom::element_type::DOUBLE:
      // Both readers round to the nearest double (simdjson's own algorithm, nlohmann strtod);
      // nlohmann writes it, so the shortest form is nlohmann's own.
      out += nlohmann::json(double(value)).dump();
      return true;
    case dom::element_type::BOOL:
      out += bool(value) ? "true" : "false";
      return true;
    case dom::element_type::NULL_VALUE:
      out += "null";
      return true;
  }
  return false;
}

/// One event object at nesting level `depth`: exactly the fields event (a known type), data
/// (an object) and optionally id (a valid id), each once. Appends it to `out`.
bool read_event(dom::element item, std::size_t depth, std::vector<ValidatedEvent>& out) {
  if (item.type() != dom::element_type::OBJECT) return false;
  std::optional<std::string_view> type;
  std::optional<std::string_view> id;
  std::optional<dom::element> data;
  for (const dom::key_value_pair field : dom::object(item)) {
    const auto kind = field.value.type();
    if (field.key == "event" && !type && kind == dom::element_type::STRING) {
      type = std::string_view(field.value);
    } else if (field.key == "data" && !data && kind == dom::element_type::OBJECT) {
      data = field.value;
    } else if (field.key == "id" && !id && kind == dom::element_type::STRING) {
      id = std::string_view(field.value);
    } else {
      return false;
    }
  }
  if (!type || !data || !is_known_event_type(*type)) return false;
  if (id && !is_valid_event_id(*id)) return false;
  ValidatedEvent event;
  if (id) event.id = std::string(*id);
  event.event_type = std::string(*type);
  if (!append_value(event.data, *data, depth + 1)) return false;
  out.push_back(std::move(event));
  return true;
}

std::optional<std::vector<ValidatedEvent>> read_body(dom::element root, IntakeKind kind) {
  std::vector<ValidatedEvent> events;
  if (kind == IntakeKind::kSingle) {
    if (!read_event(root, 1, events)) return std::nullopt;
    return events;
  }
  if (root.type() != dom::element_type::OBJECT) return std::nullopt;
  const dom::object body(root);
  if (body.size() != 1) return std::nullopt;
  const auto field = *body.begin();
  if (field.key != "events" || field.value.type() != dom::element_type::ARRAY) return std::nullopt;
  const dom::array items(field.value);
  const auto count = items.size();
  if (count == 0 || count > kMaxBatchEvents) return std::nullopt;
  events.reserve(count);
  KeySeen ids;
  for (const dom::element item : items) {
    if (!read_event(item, 3, events)) return std::nullopt;
    // Two items with one id: the reference reading names both in its refusal.
    if (!events.back().id.empty() && !ids.insert(events.back().id)) return std::nullopt;
  }
  return events;
}

}  // namespace

std::optional<std::vector<ValidatedEvent>> fast_parse_intake(std::string_view body,
                                                             IntakeKind kind) {
  thread_local dom::parser kept;
  std::optional<dom::parser> own;
  dom::parser& parser = body.size() <= kKeptParserBytes ? kept : own.emplace();
  if (parser.capacity() < body.size() || parser.max_depth() != kParserMaxDepth) {
    if (parser.allocate(std::max<std::size_t>(body.size(), 4096), kParserMaxDepth)) {
      return std::nullopt;
    }
  }
  dom::element root;
  if (parser.parse(body.data(), body.size()).get(root)) return std::nullopt;
  return read_body(root, kind);
}

void append_escaped(std::string& out, std::string_view text) {
  out += '"';
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    // Eight plain bytes at a time: a byte-at-a-time loop over each event's data was the top
    // relayd symbol at batch intake once simdjson did the reading.
    while (i + 8 <= text.size() && plain_word(text.data() + i)) i += 8;
    if (i == text.size()) break;
    const auto c = static_cast<unsigned char>(text[i]);
    if (plain_byte(c)) continue;
    out.append(text.data() + start, i - start);
    start = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default: {
        constexpr char kHex[] = "0123456789abcdef";
        const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out.append(escape, sizeof escape);
        break;
      }
    }
  }
  out.append(text.data() + start, text.size() - start);
  out += '"';
}

}  // namespace relay::server::detail
