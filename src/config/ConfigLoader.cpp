// YAML -> Config with every problem collected at its line:col (SPEC §2). This file is relayd's
// schema at the top level; its sections are in the Loader*.cpp files (Loader.hpp lists them),
// the generic reading (mappings, scalars, ${VAR}, problems) is in YamlReader.cpp.
#include "relay/config/ConfigLoader.hpp"

#include <yaml-cpp/yaml.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "ConfigFiles.hpp"
#include "Loader.hpp"

namespace relay::config {
namespace detail {

/// One webhook from the API: no ${VAR}, no file names, problems named by field path.
WebhookConfig Loader::load_api_webhook(std::string_view text) {
  api_ = true;
  set_expand_env(false);
  const YAML::Node root = parse(text);
  std::map<std::string, YAML::Mark, std::less<>> seen;
  auto w = webhook(root, root.Mark(), 0, seen);
  if (problem_count() != 0 || !w) fail();
  w->managed_by_api = true;
  return std::move(*w);
}

std::shared_ptr<const Config> Loader::load(std::string_view text) {
  auto config = std::make_shared<Config>();
  config->source_path = path();
  const YAML::Node root = parse(text);
  if (root.IsNull()) {
    // An empty file would remove every webhook (and cancel their deliveries) on reload.
    add(YAML::Mark(), "config file is empty");
    fail();
  }
  if (!root.IsMap()) {
    add(root.Mark(), "expected a mapping at top level (server:, storage:, webhooks:, ...)");
    fail();
  }
  const auto top =
      check_keys(collect(root), "", root.Mark(),
                 {"server", "storage", "delivery", "shutdown_grace", "logging", "webhooks"});
  if (const auto* e = top.get("server")) server(*e, config->server);
  if (const auto* e = top.get("storage")) storage(*e, config->storage);
  if (const auto* e = top.get("delivery")) delivery(*e, config->delivery);
  if (const auto* e = top.get("shutdown_grace")) {
    if (auto d = duration(*e, "shutdown_grace")) config->shutdown_grace = *d;
  }
  if (const auto* e = top.get("logging")) logging(*e, config->logging);
  if (const auto* e = top.get("webhooks")) webhooks(*e, config->webhooks);
  if (config->storage.backend == StorageConfig::Backend::kPostgres &&
      config->storage.postgres.lease <= config->delivery.timeout) {
    // A lease that runs out while its attempt is still in flight lets a second node send
    // the same delivery at the same time.
    add(root.Mark(), "storage.postgres.lease (" + format_duration(config->storage.postgres.lease) +
                         ") must be longer than delivery.timeout (" +
                         format_duration(config->delivery.timeout) + ")");
  }
  if (problem_count() != 0) fail();
  return config;
}

/// A file path whose contents must be readable now.
std::optional<std::string> Loader::readable_file(const Entry& e, const std::string& path) {
  auto p = non_empty_text(e, path);
  if (!p) return std::nullopt;
  std::string error;
  if (!check_readable(*p, error)) {
    add(e.value_mark(), path + ": cannot read '" + *p + "': " + error);
    return std::nullopt;
  }
  return p;
}

}  // namespace detail

using detail::kMaxConfigFileBytes;
using detail::Loader;
using detail::read_file;

std::shared_ptr<const Config> parse_config(std::string_view yaml_text, const std::string& path,
                                           const EnvLookup& env) {
  return Loader(path, env).load(yaml_text);
}

WebhookConfig parse_api_webhook(std::string_view json_text) {
  const EnvLookup none = [](const std::string&) { return std::optional<std::string>(); };
  return Loader("webhook", none).load_api_webhook(json_text);
}

std::shared_ptr<const Config> load_config_file(const std::string& path, const EnvLookup& env) {
  std::string error;
  auto text = read_file(path, kMaxConfigFileBytes, error);
  if (!text) {
    ConfigProblem p;
    p.path = path;
    p.message = "cannot read config file: " + error;
    throw ConfigError({std::move(p)});
  }
  return parse_config(*text, path, env);
}

}  // namespace relay::config
