// Webhooks managed over the API (SPEC §11).
//
// A webhook's document is the JSON object of its YAML keys (secrets included), as the client
// last left it. It is validated by the config module (one set of rules for the file and the
// API), sealed with AES-256-GCM (the row's id authenticated with it) and written through the
// store's writer; only after the commit is it swapped into the configuration in effect. Every
// change runs inside ConfigReloader::change_api_webhooks, which holds file reloads and other
// API changes off, so twenty concurrent PATCHes apply one after the other, each on the result
// of the one before (no lost update), and memory never runs ahead of the database.
#include "relay/daemon/WebhookApi.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <charconv>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>

#include "WebhookJson.hpp"
#include "relay/common/Ascii.hpp"
#include "relay/common/Ids.hpp"
#include "relay/common/SecretBox.hpp"
#include "relay/common/Time.hpp"
#include "relay/config/ConfigLoader.hpp"
#include "relay/daemon/AdminApi.hpp"
#include "relay/daemon/ConfigReloader.hpp"
#include "relay/server/HttpServer.hpp"
#include "relay/store/Store.hpp"

namespace relay::daemon {

namespace net = boost::asio;
using nlohmann::json;
using server::Request;
using server::Response;

namespace {

using detail::ApiError;
using detail::check_shape;
using detail::error_response;
using detail::json_response;
using detail::parse_body;
using detail::shape_error;
using detail::type_name;
using detail::webhook_view;

constexpr std::size_t kMaxPreviousSecrets = 5;

std::string new_webhook_id() {
  return "wh_" + common::lower(common::new_ulid());
}

}  // namespace

// PATCH, rotate-secret and DELETE act on API webhooks only: 404 for an unknown id, 409
// managed_by_config for one from the file (`verb`: what the operator does there instead).
static std::optional<Response> refuse_unless_api(const config::Config& in_effect,
                                                 const std::string& id, const char* verb) {
  const auto* existing = in_effect.find_webhook(id);
  if (existing == nullptr) return error_response({404, "not_found", "no webhook '" + id + "'"});
  if (!existing->managed_by_api) {
    return error_response(
        {409, "managed_by_config",
         "webhook '" + id + "' is defined in the config file: " + verb + " it there"});
  }
  return std::nullopt;
}

struct WebhookApi::Impl : std::enable_shared_from_this<Impl> {
  Impl(store::Store& s, ConfigReloader& r) : store(s), reloader(r) {
    const auto& key = reloader.current()->storage.secret_key;
    if (!key.empty()) box.emplace(key);
  }

  struct Record {
    json document;  // with secrets: never leaves this process unsealed
    std::string created_at;
    std::string updated_at;
  };

  store::Store& store;
  ConfigReloader& reloader;
  std::function<std::optional<std::string>(const std::string&)> state_source;
  std::optional<common::SecretBox> box;  // the key in effect at start
  std::mutex records_mutex;
  std::map<std::string, Record> records;  // API webhooks by id; written inside changes only
  net::thread_pool pool{2};

  void blocking(std::function<void(Response)> respond, std::function<Response()> work) {
    net::post(pool, [respond = std::move(respond), work = std::move(work)] {
      try {
        respond(work());
      } catch (const std::exception& e) {
        spdlog::error("webhooks API: {}", e.what());
        respond(error_response({500, "internal_error", "the request could not be served"}));
      }
    });
  }

  json view(const config::WebhookConfig& w) {
    json j = webhook_view(w);
    std::lock_guard lock(records_mutex);
    if (const auto it = records.find(w.id); it != records.end()) {
      j["created_at"] = it->second.created_at;
      j["updated_at"] = it->second.updated_at;
    }
    return j;
  }

  // The document validated as a webhook, or the 422 naming each field.
  std::variant<config::WebhookConfig, Response> validate(const json& document) {
    try {
      return config::parse_api_webhook(document.dump());
    } catch (const config::ConfigError& e) {
      json problems = json::array();
      for (const auto& p : e.problems()) problems.push_back(p.message);
      return error_response({422, "invalid_webhook", e.problems().front().message}, problems);
    }
  }

  // Seals and writes one document; blocks until the commit. nullopt: written.
  std::optional<ApiError> persist(const std::string& id, const json& document, bool create,
                                  const std::string& created_at, const std::string& now) {
    store::StoredWebhook row;
    row.id = id;
    row.sealed = box->seal(document.dump(), id);
    row.created_at = created_at;
    row.updated_at = now;
    std::promise<std::pair<store::WriteStatus, bool>> done;
    auto result = done.get_future();
    store.put_api_webhook(std::move(row), create, [&done](store::WriteStatus st, bool exists) {
      done.set_value({st, exists});
    });
    const auto [st, exists] = result.get();
    if (st != store::WriteStatus::kOk) {
      return ApiError{503, "storage_unavailable", "the database cannot be written right now"};
    }
    if (create && exists) {
      return ApiError{409, "already_exists", "webhook '" + id + "' exists already"};
    }
    if (!create && !exists) return ApiError{404, "not_found", "no webhook '" + id + "'"};
    return std::nullopt;
  }

  // Replaces (or inserts) `w` in the API set, kept in id order.
  static std::vector<config::WebhookConfig> with(std::vector<config::WebhookConfig> api,
                                                 config::WebhookConfig w) {
    const auto it =
        std::lower_bound(api.begin(), api.end(), w.id,
                         [](const auto& a, const std::string& id) { return a.id < id; });
    if (it != api.end() && it->id == w.id) {
      *it = std::move(w);
    } else {
      api.insert(it, std::move(w));
    }
    return api;
  }

  Response create(const std::string& body) {
    Response error;
    auto document = parse_body(body, error);
    if (!document) return error;
    std::vector<std::string> problems;
    check_shape(*document, false, problems);
    if (!problems.empty()) return shape_error(problems);
    if (!box) {
      return error_response({409, "no_secret_key",
                             "set storage.secret_key_file to create webhooks over the API (their "
                             "secrets are stored encrypted with it)"});
    }
    if (!document->contains("id")) (*document)["id"] = new_webhook_id();
    if (!document->contains("secret")) (*document)["secret"] = common::new_webhook_secret();
    auto checked = validate(*document);
    if (auto* r = std::get_if<Response>(&checked)) return std::move(*r);
    auto w = std::get<config::WebhookConfig>(std::move(checked));
    const std::string id = w.id;
    Response out;
    reloader.change_api_webhooks(
        [&](const config::Config& in_effect, const std::vector<config::WebhookConfig>& api)
            -> std::optional<ConfigReloader::ApiChange> {
          if (const auto* existing = in_effect.find_webhook(id)) {
            out = error_response(
                {409, existing->managed_by_api ? "already_exists" : "managed_by_config",
                 existing->managed_by_api ? "webhook '" + id + "' exists already"
                                          : "webhook '" + id + "' is defined in the config file"});
            return std::nullopt;
          }
          const auto now = common::format_rfc3339_ms(common::now_ms());
          if (auto e = persist(id, *document, true, now, now)) {
            out = error_response(*e);
            return std::nullopt;
          }
          {
            std::lock_guard lock(records_mutex);
            records[id] = Record{*document, now, now};
          }
          out.status = 201;
          return ConfigReloader::ApiChange{with(api, w), id};
        });
    if (out.status != 201) return out;
    spdlog::info("webhook={} created over the API", id);
    json j = view(w);
    j["secret"] = (*document)["secret"];  // the one answer that returns it
    return json_response(201, j);
  }

  Response get(const std::string& id) {
    const auto cfg = reloader.current();
    const auto* w = cfg->find_webhook(id);
    if (w == nullptr) return error_response({404, "not_found", "no webhook '" + id + "'"});
    json j = view(*w);
    if (state_source) {
      if (const auto text = state_source(id)) {
        const auto state = json::parse(*text, nullptr, false);
        if (state.is_object()) {
          for (const auto& [k, v] : state.items()) {
            if (!j.contains(k)) j[k] = v;
          }
        }
      }
    }
    return json_response(200, j);
  }

  // PATCH and rotate-secret: `edit` turns the stored document into the new one (or answers).
  Response update(const std::string& id,
                  const std::function<std::optional<Response>(json& document)>& edit,
                  const std::function<json(const config::WebhookConfig&, const json&)>& answer) {
    Response out;
    std::optional<config::WebhookConfig> applied;
    json document;
    reloader.change_api_webhooks(
        [&](const config::Config& in_effect, const std::vector<config::WebhookConfig>& api)
            -> std::optional<ConfigReloader::ApiChange> {
          if (auto refused = refuse_unless_api(in_effect, id, "change")) {
            out = std::move(*refused);
            return std::nullopt;
          }
          std::string created_at;
          {
            std::lock_guard lock(records_mutex);
            const auto& r = records.at(id);
            document = r.document;
            created_at = r.created_at;
          }
          if (auto r = edit(document)) {
            out = std::move(*r);
            return std::nullopt;
          }
          auto checked = validate(document);
          if (auto* r = std::get_if<Response>(&checked)) {
            out = std::move(*r);
            return std::nullopt;
          }
          auto w = std::get<config::WebhookConfig>(std::move(checked));
          const auto now = common::format_rfc3339_ms(common::now_ms());
          if (auto e = persist(id, document, false, created_at, now)) {
            out = error_response(*e);
            return std::nullopt;
          }
          {
            std::lock_guard lock(records_mutex);
            records[id] = Record{document, created_at, now};
          }
          applied = w;
          return ConfigReloader::ApiChange{with(api, std::move(w)), id};
        });
    if (!applied) return out;
    return json_response(200, answer(*applied, document));
  }

  Response patch(const std::string& id, const std::string& body) {
    Response error;
    auto patch = parse_body(body, error);
    if (!patch) return error;
    std::vector<std::string> problems;
    check_shape(*patch, true, problems);
    if (!problems.empty()) return shape_error(problems);
    if (patch->contains("id") && (*patch)["id"] != id) {
      return shape_error({"id: cannot be changed (create a new webhook and delete this one)"});
    }
    auto result = update(
        id,
        [&](json& document) -> std::optional<Response> {
          document.merge_patch(*patch);
          return std::nullopt;
        },
        [this](const config::WebhookConfig& w, const json&) { return view(w); });
    if (result.status == 200) spdlog::info("webhook={} changed over the API", id);
    return result;
  }

  Response rotate(const std::string& id, const std::string& body) {
    Response error;
    json request = json::object();
    if (!body.empty()) {
      auto parsed = parse_body(body, error);
      if (!parsed) return error;
      request = std::move(*parsed);
    }
    for (const auto& [key, value] : request.items()) {
      if (key != "expires_in") return shape_error({key + ": unknown key (known: expires_in)"});
      if (!value.is_string()) {
        return shape_error({std::string("expires_in: expected a string such as \"24h\" (found ") +
                            type_name(value) + ")"});
      }
    }
    const std::string expires_in = request.value("expires_in", std::string("24h"));
    const auto d = config::parse_duration(expires_in);
    if (!d) {
      return shape_error(
          {"expires_in: invalid duration '" + expires_in + "' (expected e.g. 30m, 24h, 7d)"});
    }
    const auto expires = common::format_rfc3339_s(common::now_ms() + *d);
    const auto secret = common::new_webhook_secret();
    auto result = update(
        id,
        [&](json& document) -> std::optional<Response> {
          const auto now = common::now_ms();
          json previous = json::array();
          previous.push_back({{"secret", document["secret"]}, {"expires", expires}});
          // Expired ones sign nothing any more; beyond five, the oldest go first.
          if (document.contains("previous_secrets")) {
            for (const auto& p : document["previous_secrets"]) {
              const auto t = common::parse_rfc3339(p.value("expires", std::string()));
              if (t && *t > now && previous.size() < kMaxPreviousSecrets) previous.push_back(p);
            }
          }
          document["previous_secrets"] = previous;
          document["secret"] = secret;
          return std::nullopt;
        },
        [&](const config::WebhookConfig& w, const json&) {
          json j = view(w);
          j["secret"] = secret;  // the answer that created it
          j["previous_secret_expires_at"] = expires;
          return j;
        });
    if (result.status == 200) {
      spdlog::info("webhook={} secret rotated; the previous one signs until {}", id, expires);
    }
    return result;
  }

  Response remove(const std::string& id) {
    Response out;
    bool deleted = false;
    reloader.change_api_webhooks(
        [&](const config::Config& in_effect, const std::vector<config::WebhookConfig>& api)
            -> std::optional<ConfigReloader::ApiChange> {
          if (auto refused = refuse_unless_api(in_effect, id, "remove")) {
            out = std::move(*refused);
            return std::nullopt;
          }
          std::promise<std::pair<store::WriteStatus, bool>> done;
          auto result = done.get_future();
          store.delete_api_webhook(id, [&done](store::WriteStatus st, bool found) {
            done.set_value({st, found});
          });
          if (result.get().first != store::WriteStatus::kOk) {
            out = error_response(
                {503, "storage_unavailable", "the database cannot be written right now"});
            return std::nullopt;
          }
          {
            std::lock_guard lock(records_mutex);
            records.erase(id);
          }
          deleted = true;
          std::vector<config::WebhookConfig> rest;
          for (const auto& w : api) {
            if (w.id != id) rest.push_back(w);
          }
          return ConfigReloader::ApiChange{std::move(rest), id};
        });
    if (!deleted) return out;
    spdlog::info("webhook={} deleted over the API; its unfinished deliveries are cancelled", id);
    return json_response(200, {{"id", id}, {"deleted", true}});
  }

  void route(const Request& req, std::function<void(Response)> respond) {
    const std::string prefix = "/v1/webhooks/";
    const auto id = req.path.substr(prefix.size());
    if (const auto slash = id.find('/'); slash != std::string::npos && slash > 0) {
      // /v1/webhooks/{id}/{action}: the actions are POSTs (AdminApi, HealthApi, rotate-secret).
      const auto action = id.substr(slash + 1);
      for (const char* a : {"test", "enable", "disable", "recover", "rotate-secret"}) {
        if (action == a) {
          auto r = error_response({405, "method_not_allowed", "use POST"});
          r.headers.emplace_back("Allow", "POST");
          respond(std::move(r));
          return;
        }
      }
    }
    if (id.empty() || id.find('/') != std::string::npos) {
      respond(error_response({404, "not_found", "no such resource"}));
      return;
    }
    auto self = shared_from_this();
    if (req.method == "GET") {
      blocking(std::move(respond), [self, id] { return self->get(id); });
    } else if (req.method == "PATCH") {
      blocking(std::move(respond), [self, id, body = req.body] { return self->patch(id, body); });
    } else {
      blocking(std::move(respond), [self, id] { return self->remove(id); });
    }
  }
};

WebhookApi::WebhookApi(store::Store& store, ConfigReloader& reloader)
    : impl_(std::make_shared<Impl>(store, reloader)) {}

WebhookApi::~WebhookApi() {
  stop();
}

void WebhookApi::stop() {
  impl_->pool.join();
}

void WebhookApi::load() {
  auto& impl = *impl_;
  const auto rows = impl.store.list_api_webhooks();
  std::vector<config::WebhookConfig> webhooks;
  for (const auto& row : rows) {
    if (!impl.box) {
      throw std::runtime_error(
          "the database holds " + std::to_string(rows.size()) +
          " webhooks created over the API, but storage.secret_key_file is not set: set it to "
          "the key file they were stored with");
    }
    const auto text = impl.box->open(row.sealed, row.id);
    if (!text) {
      throw std::runtime_error("webhook '" + row.id +
                               "' (created over the API) cannot be decrypted with the key in "
                               "storage.secret_key_file: it is not the key it was stored with "
                               "(or the database was altered)");
    }
    auto document = json::parse(*text, nullptr, false);
    if (document.is_discarded()) {
      throw std::runtime_error("webhook '" + row.id + "' is stored in an unreadable form");
    }
    try {
      webhooks.push_back(config::parse_api_webhook(*text));
    } catch (const config::ConfigError& e) {
      throw std::runtime_error(
          "webhook '" + row.id +
          "' (created over the API) is no longer valid: " + e.problems().front().message);
    }
    impl.records[row.id] = Impl::Record{std::move(document), row.created_at, row.updated_at};
  }
  impl.reloader.set_api_webhooks(std::move(webhooks));
  if (!rows.empty()) spdlog::info("{} webhooks managed over the API", rows.size());
}

void WebhookApi::set_state_source(
    std::function<std::optional<std::string>(const std::string&)> source) {
  impl_->state_source = std::move(source);
}

void WebhookApi::register_routes(server::HttpServer& server, AdminApi& admin) {
  auto impl = impl_;
  server.add_route("POST", "/v1/webhooks", [impl](Request req, std::function<void(Response)> r) {
    impl->blocking(std::move(r), [impl, body = std::move(req.body)] { return impl->create(body); });
  });
  for (const char* method : {"GET", "PATCH", "DELETE"}) {
    server.add_route(method, "/v1/webhooks/", [impl](Request req, std::function<void(Response)> r) {
      impl->route(req, std::move(r));
    });
  }
  admin.add_webhook_action("rotate-secret", [impl](std::string id, std::string body,
                                                   std::function<void(int, std::string)> respond) {
    impl->blocking(
        [respond = std::move(respond)](Response r) { respond(r.status, std::move(r.body)); },
        [impl, id = std::move(id), body = std::move(body)] { return impl->rotate(id, body); });
  });
}

}  // namespace relay::daemon
