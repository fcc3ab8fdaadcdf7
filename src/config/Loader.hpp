#pragma once
// Private to the config module: relayd's schema as one class, its parts in one file each —
// ConfigLoader.cpp (the top level, the API's single webhook), LoaderSections.cpp (server,
// storage, delivery, logging), LoaderWebhooks.cpp (the webhooks list: ids, URLs, events,
// headers) and LoaderSecrets.cpp (secrets, previous secrets, the signature scheme).

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "YamlReader.hpp"
#include "relay/config/Config.hpp"
#include "relay/config/ConfigLoader.hpp"

namespace relay::config::detail {

/// relayd's schema: which keys there are and what they mean. Reading YAML, ${VAR} expansion and
/// collecting problems at line:col come from yaml::Reader (YamlReader.hpp).
class Loader : private yaml::Reader {
 public:
  Loader(std::string path, const EnvLookup& env) : Reader(std::move(path), env) {}

  WebhookConfig load_api_webhook(std::string_view text);
  std::shared_ptr<const Config> load(std::string_view text);

 private:
  using Entry = yaml::Entry;
  using Section = yaml::Section;

  std::optional<std::string> readable_file(const Entry& e, const std::string& path);

  // LoaderSections.cpp
  void server(const Entry& entry, ServerConfig& out);
  void listen(const Entry& e, const std::string& path, ServerConfig& out);
  void storage(const Entry& entry, StorageConfig& out);
  void postgres(const Entry& entry, PostgresConfig& out);
  void delivery(const Entry& entry, DeliveryConfig& out);
  void circuit_breaker(const Entry& entry, CircuitBreakerConfig& out);
  void retry_schedule(const Entry& e, DeliveryConfig& out);
  void logging(const Entry& entry, LoggingConfig& out);

  // LoaderWebhooks.cpp
  void webhooks(const Entry& e, std::vector<WebhookConfig>& out);
  std::optional<WebhookConfig> webhook(const YAML::Node& node, const YAML::Mark& mark,
                                       std::size_t index,
                                       std::map<std::string, YAML::Mark, std::less<>>& seen);
  static const std::vector<std::string_view>& event_names();
  void events(const Entry& e, const std::string& path, WebhookConfig& w);
  void headers(const Entry& e, const std::string& path, WebhookConfig& w);

  // LoaderSecrets.cpp
  std::optional<std::string> secret(const Section& s,
                                    std::optional<std::string>* file_path = nullptr);
  static YAML::Mark secret_mark(const Section& s);
  std::optional<std::string> standard_key(const Section& s, const std::string& secret);
  void signature(const Section& s, WebhookConfig& w);
  void previous_secrets(const Entry& e, const std::string& path, bool standard, WebhookConfig& w);

  bool api_ = false;  // reading one webhook from the API (load_api_webhook)
};

}  // namespace relay::config::detail
