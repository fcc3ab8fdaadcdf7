// `relayd reload --dry-run`: asks the daemon what its config file would change, prints it.
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "relay/daemon/AdminClient.hpp"

namespace relay::daemon {

namespace {

using nlohmann::json;

std::string join(const json& list) {
  std::string out;
  for (const auto& item : list) {
    if (!out.empty()) out += ", ";
    out += item.is_string() ? item.get<std::string>() : item.dump();
  }
  return out;
}

std::string deliveries(std::int64_t n, const char* kind) {
  return std::to_string(n) + " " + kind + (n == 1 ? " delivery" : " deliveries");
}

void print_preview(const json& j, std::ostream& out) {
  const auto& w = j.at("webhooks");
  bool any = false;
  auto line = [&](const std::string& text) {
    out << "  " << text << '\n';
    any = true;
  };
  out << "reload --dry-run: nothing was applied; reloading the daemon's config file would:\n";
  for (const auto& a : w.at("added")) {
    std::string text = "add webhook " + a.at("id").get<std::string>();
    if (a.contains("same_url_as_removed")) {
      text += " (same URL as removed " + a.at("same_url_as_removed").get<std::string>() +
              ": a rename does not move deliveries)";
    }
    line(text);
  }
  for (const auto& r : w.at("removed")) {
    line("remove webhook " + r.at("id").get<std::string>() + ": cancels " +
         deliveries(r.at("deliveries_cancelled").get<std::int64_t>(), "unfinished"));
  }
  for (const auto& c : w.at("changed")) {
    // `enabled` has its own line below (with what it does to deliveries).
    json keys = json::array();
    for (const auto& k : c.at("keys")) {
      if (k != "enabled") keys.push_back(k);
    }
    if (!keys.empty()) line("change webhook " + c.at("id").get<std::string>() + ": " + join(keys));
  }
  for (const auto& d : w.at("disabled")) {
    std::string text = "disable webhook " + d.at("id").get<std::string>() + ": pauses " +
                       deliveries(d.at("deliveries_paused").get<std::int64_t>(), "pending");
    if (const auto dropped = d.at("deliveries_dropped").get<std::int64_t>(); dropped > 0) {
      text += ", drops " + std::to_string(dropped) + " beyond max_queued";
    }
    line(text);
  }
  for (const auto& e : w.at("enabled")) {
    line("enable webhook " + e.at("id").get<std::string>() + ": resumes " +
         deliveries(e.at("deliveries_resumed").get<std::int64_t>(), "paused"));
  }
  if (!j.at("restart_required").empty()) {
    line("need a restart for: " + join(j.at("restart_required")) +
         " (a reload keeps the current value)");
  }
  if (!j.at("settings_changed").empty()) line("change settings: " + join(j.at("settings_changed")));
  if (!any) line("change nothing");
  const auto& d = j.at("deliveries");
  out << "deliveries: " << d.at("cancelled") << " cancelled, " << d.at("paused") << " paused, "
      << d.at("dropped") << " dropped, " << d.at("resumed") << " resumed\n";
}

}  // namespace

int reload_dry_run(const AdminOptions& options, std::ostream& out, std::ostream& err) {
  try {
    const auto reply =
        admin_request(resolve_admin_target(options), "POST", "/v1/reload?dry_run=true", "{}");
    const auto j = json::parse(reply.body, nullptr, false);
    if (reply.status == 200 && j.is_object()) {
      for (const auto& w : j.value("warnings", json::array())) {
        if (w.is_string()) err << "warning: " << w.get<std::string>() << '\n';
      }
      print_preview(j, out);
      return 0;
    }
    if (reply.status == 422 && j.is_object() && j.contains("error") &&
        j["error"].contains("problems") && j["error"]["problems"].is_array()) {
      for (const auto& p : j["error"]["problems"]) {
        if (p.is_string()) err << p.get<std::string>() << '\n';
      }
      err << "relayd: reload --dry-run: the daemon would reject this file; the current "
             "configuration stays in effect\n";
      return 1;
    }
    std::string message = reply.body;
    if (j.is_object() && j.contains("error") && j["error"].contains("message")) {
      message = j["error"]["message"].get<std::string>();
    }
    err << "relayd: reload --dry-run failed: " << message << " (HTTP " << reply.status << ")\n";
    return 1;
  } catch (const std::exception& e) {
    err << "relayd: reload --dry-run failed: " << e.what() << '\n';
    return 1;
  }
}

}  // namespace relay::daemon
