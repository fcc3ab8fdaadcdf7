#include "Console.hpp"

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "ConsoleAssets.hpp"
#include "relay/common/EventTypes.hpp"

namespace relay::daemon {

using server::Request;
using server::Response;

namespace {

// 'self' only: a response body or event field that reached the DOM as markup still could not
// run (no inline script), load anything from elsewhere, or be framed by another site.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

std::string_view content_type_of(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".json")) return "application/json";
  return "application/octet-stream";
}

Response with_headers(Response r) {
  r.headers.emplace_back("Content-Security-Policy", std::string(kContentSecurityPolicy));
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  // A new binary may bring new files under the same names.
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

Response console_file(std::string_view path) {
  auto name = path.substr(std::string_view("/ui/").size());
  if (name.empty()) name = "index.html";
  Response r;
  if (name == "event-types.json") {
    // The catalogue the test send offers, from its one home (common/EventTypes.hpp).
    r.body = nlohmann::json(
                 std::vector<std::string>(common::kEventTypes.begin(), common::kEventTypes.end()))
                 .dump();
    return with_headers(std::move(r));
  }
  for (const auto& asset : console_assets()) {
    if (asset.name == name) {
      r.content_type = std::string(content_type_of(name));
      r.body = std::string(asset.bytes);
      return with_headers(std::move(r));
    }
  }
  r.status = 404;
  r.content_type = "text/plain; charset=utf-8";
  r.body = "no such console file\n";
  return with_headers(std::move(r));
}

}  // namespace

void register_console_routes(server::HttpServer& server) {
  server.add_route("GET", "/ui", [](Request, std::function<void(Response)> respond) {
    Response r;
    r.status = 308;
    r.content_type.clear();
    r.headers.emplace_back("Location", "/ui/");
    respond(with_headers(std::move(r)));
  });
  server.add_route("GET", "/ui/", [](Request req, std::function<void(Response)> respond) {
    respond(console_file(req.path));
  });
}

}  // namespace relay::daemon
