#include "YamlReader.hpp"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <limits>
#include <sstream>
#include <utility>

#include "relay/common/Ascii.hpp"
#include "relay/common/Suggest.hpp"

namespace relay::config::yaml {
namespace {

constexpr const char* kDurationExamples = "250ms, 30s, 5m, 2h or 30d";

/// Records where the documents of a YAML stream start, nothing else.
class DocumentStarts final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> marks;
  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

/// Where a second document starts, if the text has one. yaml-cpp 0.7's LoadAll() loops forever
/// on some malformed input (",W": HandleNextDocument keeps returning true without consuming
/// anything), so the reader never calls it: it Load()s the first document and asks a parser for
/// at most two. Throws YAML::ParserException for a syntax error in the second document.
std::optional<YAML::Mark> second_document(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts starts;
  if (!parser.HandleNextDocument(starts) || !parser.HandleNextDocument(starts)) return std::nullopt;
  if (starts.marks.size() < 2) return std::nullopt;
  return starts.marks[1];
}

}  // namespace

std::string mark_text(const YAML::Mark& m) {
  if (m.is_null()) return "1:1";
  return std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), common::is_digit);
}

std::optional<std::uint64_t> parse_uint(std::string_view s, std::uint64_t max) {
  if (!all_digits(s)) return std::nullopt;
  std::uint64_t n = 0;
  for (const char c : s) {
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (n > (max - d) / 10) return std::nullopt;
    n = n * 10 + d;
  }
  return n;
}

YAML::Node Reader::parse(std::string_view text) {
  YAML::Node root;
  try {
    const std::string owned(text);
    root = YAML::Load(owned);
    if (const auto second = second_document(owned)) {
      add(*second, "expected one YAML document, found more ('---')");
    }
  } catch (const YAML::Exception& e) {
    // yaml-cpp reads an unquoted `*` (as in `events: [*]`) as an alias with no name: say what
    // to do instead of "alias not found after *".
    if (e.msg.find("alias not found") != std::string::npos) {
      // yaml-cpp marks the character after the `*`: point at the `*` itself.
      auto at = e.mark;
      if (at.column > 0) --at.column;
      add(at, "an unquoted * starts a YAML alias: quote it, as in events: [\"*\"]");
    } else if (dynamic_cast<const YAML::ParserException*>(&e) != nullptr) {
      add(e.mark, "YAML syntax error: " + e.msg);
    } else {
      add(e.mark, "YAML error: " + e.msg);
    }
    fail();
  }
  return root;
}

void Reader::fail() {
  std::stable_sort(problems_.begin(), problems_.end(),
                   [](const ConfigProblem& a, const ConfigProblem& b) {
                     return std::pair(a.line, a.column) < std::pair(b.line, b.column);
                   });
  throw ConfigError(std::move(problems_));
}

void Reader::add(const YAML::Mark& mark, std::string message) {
  ConfigProblem p;
  p.path = path_;
  p.line = mark.is_null() ? 1 : mark.line + 1;
  p.column = mark.is_null() ? 1 : mark.column + 1;
  p.message = std::move(message);
  problems_.push_back(std::move(p));
}

// ---- mappings ------------------------------------------------------------------------------

std::vector<Entry> Reader::collect(const YAML::Node& map) {
  std::vector<Entry> out;
  for (auto it = map.begin(); it != map.end(); ++it) {
    Entry e;
    e.key_node = it->first;
    e.value = it->second;
    if (it->first.IsScalar()) e.key = it->first.Scalar();
    out.push_back(std::move(e));
  }
  return out;
}

Section Reader::check_keys(std::vector<Entry> raw, std::string path, const YAML::Mark& mark,
                           std::initializer_list<std::string_view> allowed) {
  Section s;
  s.path = std::move(path);
  s.mark = mark;
  for (auto& e : raw) {
    if (!e.key_node.IsScalar()) {
      add(e.key_node.Mark(), "expected a plain text key " + s.where());
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), e.key) == allowed.end()) {
      const std::vector<std::string_view> known(allowed.begin(), allowed.end());
      add(e.key_node.Mark(),
          "unknown key '" + e.key + "' " + s.where() + common::did_you_mean(e.key, known));
      continue;
    }
    if (const auto* first = s.get(e.key)) {
      add(e.key_node.Mark(), "duplicate key '" + e.key + "' " + s.where() + " (first at " +
                                 mark_text(first->key_node.Mark()) + ")");
      continue;
    }
    s.entries.push_back(std::move(e));
  }
  return s;
}

std::optional<Section> Reader::section(const Entry& e,
                                       std::initializer_list<std::string_view> allowed) {
  if (e.value.IsNull()) return Section{e.key, e.value_mark(), {}};
  if (!e.value.IsMap()) {
    add(e.value_mark(), e.key + ": expected a mapping");
    return std::nullopt;
  }
  return check_keys(collect(e.value), e.key, e.value.Mark(), allowed);
}

// ---- scalars -------------------------------------------------------------------------------

std::optional<std::string> Reader::scalar(const Entry& e, const std::string& path,
                                          std::string_view expectation) {
  return scalar_node(e.value, e.value_mark(), path, expectation);
}

std::optional<std::string> Reader::scalar_node(const YAML::Node& node, const YAML::Mark& mark,
                                               const std::string& path,
                                               std::string_view expectation) {
  if (!node.IsScalar()) {
    add(mark, path + ": " + std::string(expectation));
    return std::nullopt;
  }
  if (!expand_env_) return node.Scalar();
  std::string error;
  auto value = expand_env(node.Scalar(), env_, error);
  if (!value) add(mark, path + ": " + error);
  return value;
}

std::optional<std::string> Reader::text(const Entry& e, const std::string& path) {
  return scalar(e, path, "expected a string");
}

std::optional<std::string> Reader::non_empty_text(const Entry& e, const std::string& path) {
  auto v = text(e, path);
  if (v && v->empty()) {
    add(e.value_mark(), path + ": must not be empty");
    return std::nullopt;
  }
  return v;
}

std::optional<bool> Reader::boolean(const Entry& e, const std::string& path) {
  constexpr std::string_view kExpect = "expected true or false";
  const auto v = scalar(e, path, kExpect);
  if (!v) return std::nullopt;
  if (*v == "true" || *v == "True" || *v == "TRUE") return true;
  if (*v == "false" || *v == "False" || *v == "FALSE") return false;
  add(e.value_mark(), path + ": " + std::string(kExpect));
  return std::nullopt;
}

std::optional<std::uint64_t> Reader::positive_int(const Entry& e, const std::string& path,
                                                  std::uint64_t max) {
  constexpr std::string_view kExpect = "expected a positive integer";
  const auto v = scalar(e, path, kExpect);
  if (!v) return std::nullopt;
  if (!all_digits(*v) || parse_uint(*v, std::numeric_limits<std::uint64_t>::max()) == 0u) {
    add(e.value_mark(), path + ": " + std::string(kExpect));
    return std::nullopt;
  }
  const auto n = parse_uint(*v, max);
  if (!n) {
    add(e.value_mark(), path + ": must be at most " + std::to_string(max));
    return std::nullopt;
  }
  return n;
}

std::optional<Duration> Reader::duration_node(const YAML::Node& node, const YAML::Mark& mark,
                                              const std::string& path) {
  const auto v = scalar_node(node, mark, path,
                             "expected a duration such as " + std::string(kDurationExamples));
  if (!v) return std::nullopt;
  const auto d = parse_duration(*v);
  if (!d) {
    add(mark, path + ": invalid duration '" + *v +
                  "' (expected a whole number and a unit: " + kDurationExamples + ")");
  }
  return d;
}

std::optional<Duration> Reader::duration(const Entry& e, const std::string& path) {
  return duration_node(e.value, e.value_mark(), path);
}

std::optional<Duration> Reader::positive_duration(const Entry& e, const std::string& path) {
  auto d = duration(e, path);
  if (d && d->count() <= 0) {
    add(e.value_mark(), path + ": must be greater than 0");
    return std::nullopt;
  }
  return d;
}

}  // namespace relay::config::yaml
