// relayd's schema, the webhooks list: each webhook's id, URL, events, headers and options (its
// secrets and signature are in LoaderSecrets.cpp). Also reads the one webhook the API takes.
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ConfigFiles.hpp"
#include "Loader.hpp"
#include "ValueSyntax.hpp"
#include "relay/common/Ascii.hpp"
#include "relay/common/EventTypes.hpp"
#include "relay/common/HeaderNames.hpp"
#include "relay/common/Suggest.hpp"

namespace relay::config::detail {

using common::lower;
using yaml::mark_text;

// ---- webhooks ------------------------------------------------------------------------------

void Loader::webhooks(const Entry& e, std::vector<WebhookConfig>& out) {
  if (e.value.IsNull()) return;  // `webhooks:` with every entry commented out
  if (!e.value.IsSequence()) {
    add(e.value_mark(), "webhooks: expected a list of webhooks (- id: ...)");
    return;
  }
  std::map<std::string, YAML::Mark, std::less<>> seen;
  for (std::size_t i = 0; i < e.value.size(); ++i) {
    const YAML::Node item = e.value[i];
    const YAML::Mark mark = item.Mark().is_null() ? e.value_mark() : item.Mark();
    if (auto w = webhook(item, mark, i, seen)) out.push_back(std::move(*w));
  }
}

std::optional<WebhookConfig> Loader::webhook(const YAML::Node& node, const YAML::Mark& mark,
                                             std::size_t index,
                                             std::map<std::string, YAML::Mark, std::less<>>& seen) {
  // From the API the object itself is the top level: paths are its fields ("events[2]").
  const std::string by_index = api_ ? "" : "webhooks[" + std::to_string(index) + "]";
  const auto at = [](const std::string& where, const std::string& message) {
    return where.empty() ? message : where + ": " + message;
  };
  const auto field = [](const std::string& where, const std::string& key) {
    return where.empty() ? key : where + "." + key;
  };
  if (!node.IsMap()) {
    add(mark, at(by_index, "expected a mapping with id, url, secret and events"));
    return std::nullopt;
  }
  const std::size_t problems_before = problem_count();
  auto raw = collect(node);

  // Name the webhook by its id in messages when the id is usable, else by its index.
  std::string name = by_index;
  std::optional<std::string> id;
  const Entry* id_entry = nullptr;
  for (const auto& r : raw) {
    if (r.key == "id") {
      id_entry = &r;
      break;
    }
  }
  Entry id_copy;
  if (id_entry != nullptr) {
    id_copy = *id_entry;
    id = text(id_copy, field(by_index, "id"));
    if (id && is_valid_webhook_id(*id)) {
      if (!api_) name = "webhooks[" + *id + "]";
    } else if (id) {
      add(id_copy.value_mark(), field(by_index, "id") + ": invalid id '" + *id +
                                    "' (use 1-64 characters from a-z, 0-9, _ and -)");
      id.reset();
    }
  }
  const auto s =
      check_keys(std::move(raw), name, node.Mark(),
                 {"id", "url", "secret", "secret_file", "signature", "previous_secrets", "events",
                  "enabled", "max_queued", "headers", "allow_insecure_http", "ca_file"});

  WebhookConfig w;
  if (id_entry == nullptr) add(s.mark, at(name, "missing required key 'id'"));
  if (id) {
    w.id = *id;
    if (const auto it = seen.find(*id); it != seen.end()) {
      add(id_copy.value_mark(), field(name, "id") + ": duplicate webhook id '" + *id +
                                    "' (first defined at " + mark_text(it->second) + ")");
    } else {
      seen.emplace(*id, s.mark);
    }
  }

  if (const auto* e = s.get("allow_insecure_http")) {
    if (auto b = boolean(*e, s.key_path("allow_insecure_http"))) w.allow_insecure_http = *b;
  }
  if (const auto* e = s.get("url")) {
    if (auto v = non_empty_text(*e, s.key_path("url"))) {
      std::string error;
      if (auto url = check_url(*v, w.allow_insecure_http, error)) {
        w.url = std::move(*url);
      } else {
        add(e->value_mark(), s.key_path("url") + ": " + error);
      }
    }
  } else {
    add(s.mark, at(name, "missing required key 'url'"));
  }
  if (auto v = secret(s, &w.secret_file)) w.secret = std::move(*v);
  signature(s, w);
  if (const auto* e = s.get("events")) {
    events(*e, s.key_path("events"), w);
  } else {
    add(s.mark, at(name, "missing required key 'events'"));
  }
  if (const auto* e = s.get("enabled")) {
    if (auto b = boolean(*e, s.key_path("enabled"))) w.enabled = *b;
  }
  if (const auto* e = s.get("max_queued")) {
    if (auto n =
            positive_int(*e, s.key_path("max_queued"), std::numeric_limits<std::uint32_t>::max())) {
      w.max_queued = static_cast<std::size_t>(*n);
    }
  }
  if (const auto* e = s.get("headers")) headers(*e, s.key_path("headers"), w);
  if (const auto* e = s.get("ca_file")) {
    // Checked here, not at the first attempt: a wrong file (a key, a DER file) would
    // otherwise show up only as failing deliveries.
    if (auto p = readable_file(*e, s.key_path("ca_file"))) {
      std::string error;
      const auto pem = read_file(*p, kMaxConfigFileBytes, error);
      if (!pem) {
        add(e->value_mark(), s.key_path("ca_file") + ": cannot read '" + *p + "': " + error);
      } else if (pem->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
        add(e->value_mark(), s.key_path("ca_file") + ": '" + *p +
                                 "' holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
      } else {
        w.ca_file = *p;
      }
    }
  }
  if (problem_count() != problems_before) return std::nullopt;
  return w;
}

/// What an `events:` item may be: a type of the catalogue, a group, or "*".
const std::vector<std::string_view>& Loader::event_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v(common::kEventTypes.begin(), common::kEventTypes.end());
    for (const char* g : {"ticket.*", "message.*", "customer.*", "sla.*"}) v.emplace_back(g);
    return v;
  }();
  return names;
}

void Loader::events(const Entry& e, const std::string& path, WebhookConfig& w) {
  if (!e.value.IsSequence() || e.value.size() == 0) {
    add(e.value_mark(), path +
                            ": expected a non-empty list of event types, e.g. "
                            "[ticket.created, \"message.*\"]");
    return;
  }
  for (std::size_t i = 0; i < e.value.size(); ++i) {
    const YAML::Node item = e.value[i];
    const YAML::Mark mark = item.Mark().is_null() ? e.value_mark() : item.Mark();
    // Each item by its index, so a typo is found in a long list (and named by the API).
    const std::string item_path = path + "[" + std::to_string(i) + "]";
    const auto v = scalar_node(item, mark, item_path, "expected an event type (a string)");
    if (!v) continue;
    if (*v == "*" || is_known_event_type(*v)) {
      w.events.push_back(*v);
      continue;
    }
    if (v->size() > 2 && v->ends_with(".*")) {
      const std::string group = v->substr(0, v->size() - 2);
      if (group == "ticket" || group == "message" || group == "customer" || group == "sla") {
        w.events.push_back(*v);
      } else {
        add(mark, item_path + ": unknown event group '" + *v +
                      "' (groups: ticket.*, message.*, customer.*, sla.*)" +
                      common::did_you_mean(*v, event_names()));
      }
      continue;
    }
    add(mark,
        item_path + ": unknown event type '" + *v + "'" + common::did_you_mean(*v, event_names()));
  }
}

void Loader::headers(const Entry& e, const std::string& path, WebhookConfig& w) {
  if (e.value.IsNull()) return;
  if (!e.value.IsMap()) {
    add(e.value_mark(), path + ": expected a mapping of header names to values");
    return;
  }
  std::map<std::string, YAML::Mark, std::less<>> seen;  // lower-case name -> first key
  for (const auto& h : collect(e.value)) {
    const YAML::Mark key_mark = h.key_node.Mark();
    if (!h.key_node.IsScalar() || !is_valid_header_name(h.key)) {
      add(key_mark, path + ": '" + (h.key_node.IsScalar() ? h.key : std::string("?")) +
                        "' is not a valid header name");
      continue;
    }
    const std::string lname = lower(h.key);
    if (common::is_relay_set_header(lname)) {
      add(key_mark, path + ": '" + h.key + "' is set by relayd and cannot be overridden");
      continue;
    }
    if (common::is_relay_prefixed_header(lname)) {
      add(key_mark, path + ": '" + h.key + "' is reserved (relayd sets X-Relay-* headers)");
      continue;
    }
    if (const auto it = seen.find(lname); it != seen.end()) {
      add(key_mark,
          path + ": duplicate header '" + h.key + "' (first at " + mark_text(it->second) + ")");
      continue;
    }
    seen.emplace(lname, key_mark);
    // Values may be credentials (Authorization): never quote them.
    const std::string value_path = path + "." + h.key;
    auto v = scalar(h, value_path, "expected a string");
    if (!v) continue;
    if (!is_valid_header_value(*v)) {
      add(h.value_mark(), value_path + ": must be one line without control characters");
      continue;
    }
    w.headers.emplace_back(h.key, std::move(*v));
  }
}

}  // namespace relay::config::detail
