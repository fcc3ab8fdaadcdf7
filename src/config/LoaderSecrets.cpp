// relayd's schema, a webhook's secrets: `secret` or `secret_file`, the signature scheme (and the
// Standard Webhooks key it needs), previous secrets with their expiry.
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include "ConfigFiles.hpp"
#include "Loader.hpp"
#include "relay/common/Time.hpp"

namespace relay::config::detail {

/// `secret` or `secret_file` of a section (a webhook or a previous secret); `file_path` (when
/// given) is set to the file's path when the secret came from one.
std::optional<std::string> Loader::secret(const Section& s, std::optional<std::string>* file_path) {
  const auto* inline_secret = s.get("secret");
  const auto* file = s.get("secret_file");
  if (inline_secret && file) {
    add(file->key_node.Mark(), s.path + ": set either secret or secret_file, not both");
    return std::nullopt;
  }
  if (!inline_secret && !file) {
    add(s.mark, s.path.empty() ? std::string("missing required key 'secret'")
                               : s.path + ": missing required key 'secret' (or 'secret_file')");
    return std::nullopt;
  }
  if (inline_secret) {
    // Never quote the value: problems are reported by position only.
    return non_empty_text(*inline_secret, s.key_path("secret"));
  }
  const auto path = s.key_path("secret_file");
  const auto p = non_empty_text(*file, path);
  if (!p) return std::nullopt;
  std::string error;
  auto contents = read_file(*p, kMaxSecretFileBytes, error);
  if (!contents) {
    add(file->value_mark(), path + ": cannot read '" + *p + "': " + error);
    return std::nullopt;
  }
  // `echo secret > file` and editors add a final newline that is not part of the secret.
  while (!contents->empty() && (contents->back() == '\n' || contents->back() == '\r')) {
    contents->pop_back();
  }
  if (contents->empty()) {
    add(file->value_mark(), path + ": file '" + *p + "' is empty");
    return std::nullopt;
  }
  if (file_path) *file_path = *p;
  return contents;
}

/// Where a section's secret was given: the value of `secret` or of `secret_file`.
YAML::Mark Loader::secret_mark(const Section& s) {
  if (const auto* e = s.get("secret")) return e->value_mark();
  if (const auto* e = s.get("secret_file")) return e->value_mark();
  return s.mark;
}

/// The key bytes of a Standard Webhooks secret, or a problem at the secret's position.
std::optional<std::string> Loader::standard_key(const Section& s, const std::string& secret) {
  std::string error;
  auto key = decode_standard_secret(secret, error);
  if (!key) {
    const bool from_file = s.get("secret_file") != nullptr;
    add(secret_mark(s), s.key_path(from_file ? "secret_file" : "secret") + ": " + error +
                            " (required by signature: standard or both)");
  }
  return key;
}

void Loader::signature(const Section& s, WebhookConfig& w) {
  if (const auto* e = s.get("signature")) {
    const auto path = s.key_path("signature");
    const auto v = scalar(*e, path, "expected relay, standard or both");
    if (!v) return;
    if (*v == "relay") {
      w.signature = SignatureScheme::kRelay;
    } else if (*v == "standard") {
      w.signature = SignatureScheme::kStandard;
    } else if (*v == "both") {
      w.signature = SignatureScheme::kBoth;
    } else {
      add(e->value_mark(),
          path + ": unknown signature scheme '" + *v + "' (expected relay, standard or both)");
      return;
    }
  }
  const bool standard = w.signature != SignatureScheme::kRelay;
  if (standard && !w.secret.empty()) {
    if (auto key = standard_key(s, w.secret)) w.signing_key = std::move(*key);
  }
  if (const auto* e = s.get("previous_secrets")) {
    previous_secrets(*e, s.key_path("previous_secrets"), standard, w);
  }
}

void Loader::previous_secrets(const Entry& e, const std::string& path, bool standard,
                              WebhookConfig& w) {
  constexpr std::size_t kMaxPrevious = 5;
  if (e.value.IsNull()) return;
  if (!e.value.IsSequence()) {
    add(e.value_mark(), path + ": expected a list of {secret (or secret_file), expires}");
    return;
  }
  if (e.value.size() > kMaxPrevious) {
    add(e.value_mark(), path + ": at most " + std::to_string(kMaxPrevious) +
                            " previous secrets (found " + std::to_string(e.value.size()) + ")");
    return;
  }
  for (std::size_t i = 0; i < e.value.size(); ++i) {
    const YAML::Node item = e.value[i];
    const YAML::Mark mark = item.Mark().is_null() ? e.value_mark() : item.Mark();
    const std::string item_path = path + "[" + std::to_string(i) + "]";
    if (!item.IsMap()) {
      add(mark, item_path + ": expected a mapping with secret (or secret_file) and expires");
      continue;
    }
    const auto ps =
        check_keys(collect(item), item_path, item.Mark(), {"secret", "secret_file", "expires"});
    PreviousSecret prev;
    auto value = secret(ps);
    if (value && standard) {
      auto key = standard_key(ps, *value);
      if (!key) continue;
      prev.key = std::move(*key);
    }
    const auto* ex = ps.get("expires");
    if (ex == nullptr) {
      add(ps.mark, item_path +
                       ": missing required key 'expires' (an RFC 3339 UTC time such as "
                       "2026-12-01T00:00:00Z)");
      continue;
    }
    const auto text_value = scalar(*ex, ps.key_path("expires"), "expected an RFC 3339 time");
    if (!text_value) continue;
    const auto t = common::parse_rfc3339(*text_value);
    if (!t) {
      add(ex->value_mark(), ps.key_path("expires") + ": invalid time '" + *text_value +
                                "' (expected an RFC 3339 UTC time such as "
                                "2026-12-01T00:00:00Z)");
      continue;
    }
    if (!value) continue;
    prev.secret = std::move(*value);
    prev.expires = *t;
    w.previous_secrets.push_back(std::move(prev));
  }
}

}  // namespace relay::config::detail
