#pragma once
// A small reader over yaml-cpp for a file checked against a schema: it walks mappings and
// scalars, expands ${VAR}, and collects every problem at its line:col instead of stopping at
// the first. It knows nothing of relayd's keys; the Loader (Loader.hpp, ConfigLoader.cpp and the
// Loader*.cpp files) is the schema (which keys, what they mean) written on top of it. Private to
// the config module.

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/config/Config.hpp"
#include "relay/config/ConfigLoader.hpp"

namespace relay::config::yaml {

/// "LINE:COL", 1-based ("1:1" for a null mark), as problems and "first at" notes print it.
std::string mark_text(const YAML::Mark& m);

/// Whether `s` is one or more ASCII digits.
bool all_digits(std::string_view s);

/// Decimal 0..max, nullopt on anything else (no sign, no spaces).
std::optional<std::uint64_t> parse_uint(std::string_view s, std::uint64_t max);

/// One `key: value` of a mapping.
struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;

  /// Where a problem with the value is reported. An empty value (`key:` and nothing) has the
  /// mark of whatever follows it, often the next line; the key is a better place then.
  [[nodiscard]] YAML::Mark value_mark() const {
    const YAML::Mark v = value.Mark();
    if (v.is_null() || (value.IsNull() && v.line != key_node.Mark().line)) return key_node.Mark();
    return v;
  }
};

/// A mapping after its keys were checked: each known key once, in file order.
struct Section {
  std::string path;  // "server", "webhooks[crm]"; empty at top level
  YAML::Mark mark;   // the mapping itself, for "missing required key"
  std::vector<Entry> entries;

  [[nodiscard]] const Entry* get(std::string_view key) const {
    for (const auto& e : entries) {
      if (e.key == key) return &e;
    }
    return nullptr;
  }
  [[nodiscard]] std::string key_path(std::string_view key) const {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }
  [[nodiscard]] std::string where() const { return path.empty() ? "at top level" : "in " + path; }
};

/// Reads one file's YAML. Every reader reports what is wrong as a problem (`path: reason`, at
/// the value's line:col) and returns nullopt, so that a caller can go on and report the rest;
/// fail() throws them all as one ConfigError, sorted by position.
class Reader {
 public:
  /// `path` names the file in problems; `env` expands ${VAR} in every scalar read.
  Reader(std::string path, const EnvLookup& env) : path_(std::move(path)), env_(env) {}

  /// Off: scalars are taken as written (`${X}` stays `${X}`), for input that is not a file the
  /// operator wrote (the webhooks API), where expansion would reveal the environment.
  void set_expand_env(bool on) { expand_env_ = on; }

  [[nodiscard]] const std::string& path() const { return path_; }

  /// The first document of `text`. A YAML syntax error fails at once (nothing else can be read);
  /// a second document ('---') is a problem.
  YAML::Node parse(std::string_view text);

  void add(const YAML::Mark& mark, std::string message);
  [[nodiscard]] std::size_t problem_count() const { return problems_.size(); }
  /// Throws every problem so far as one ConfigError, in file order.
  [[noreturn]] void fail();

  // ---- mappings ------------------------------------------------------------------------------

  /// Every `key: value` of `map`, in file order; keys that are not scalars have an empty `key`.
  static std::vector<Entry> collect(const YAML::Node& map);

  /// Reports unknown, duplicate and non-text keys; returns the usable entries.
  Section check_keys(std::vector<Entry> raw, std::string path, const YAML::Mark& mark,
                     std::initializer_list<std::string_view> allowed);

  /// A section value: a mapping, or empty (`server:` alone means all defaults).
  std::optional<Section> section(const Entry& e, std::initializer_list<std::string_view> allowed);

  // ---- scalars -------------------------------------------------------------------------------

  /// The value as expanded text; reports `path: expectation` when it is not a scalar.
  std::optional<std::string> scalar(const Entry& e, const std::string& path,
                                    std::string_view expectation);
  /// Same for a node that is not a mapping value (a list item), reported at `mark`.
  std::optional<std::string> scalar_node(const YAML::Node& node, const YAML::Mark& mark,
                                         const std::string& path, std::string_view expectation);
  std::optional<std::string> text(const Entry& e, const std::string& path);
  std::optional<std::string> non_empty_text(const Entry& e, const std::string& path);
  /// true/True/TRUE or false/False/FALSE (not YAML 1.1's yes/no/on/off).
  std::optional<bool> boolean(const Entry& e, const std::string& path);
  /// 1..max.
  std::optional<std::uint64_t> positive_int(const Entry& e, const std::string& path,
                                            std::uint64_t max);
  /// parse_duration's syntax ("30s", "5m", ...).
  std::optional<Duration> duration_node(const YAML::Node& node, const YAML::Mark& mark,
                                        const std::string& path);
  std::optional<Duration> duration(const Entry& e, const std::string& path);
  std::optional<Duration> positive_duration(const Entry& e, const std::string& path);

 private:
  std::string path_;
  const EnvLookup& env_;
  bool expand_env_ = true;
  std::vector<ConfigProblem> problems_;
};

}  // namespace relay::config::yaml
