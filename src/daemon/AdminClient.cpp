#include "relay/daemon/AdminClient.hpp"

#include <openssl/rand.h>
#include <signal.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "relay/common/Base64.hpp"
#include "relay/common/SecretBox.hpp"
#include "relay/common/Version.hpp"
#include "relay/config/ConfigLoader.hpp"

namespace relay::daemon {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

std::string connect_host(const std::string& listen_host) {
  // A wildcard listener is reached through loopback.
  if (listen_host == "0.0.0.0" || listen_host.empty()) return "127.0.0.1";
  if (listen_host == "::") return "::1";
  return listen_host;
}

std::string error_message(const std::string& body) {
  try {
    const auto j = nlohmann::json::parse(body);
    if (j.contains("error") && j["error"].contains("message")) {
      return j["error"]["message"].get<std::string>();
    }
  } catch (const nlohmann::json::exception&) {
  }
  return body;
}

// "HOST:PORT" or "[V6]:PORT" → host and port; `what` names the source in errors.
void split_address(const std::string& text, const std::string& what, AdminTarget& t) {
  std::string host;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::runtime_error(what + ": '" + text + "' is not [IPV6]:PORT");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos)
      throw std::runtime_error(what + ": '" + text + "' has no :PORT");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned n = 0;
  const auto r = std::from_chars(port.data(), port.data() + port.size(), n);
  if (port.empty() || r.ptr != port.data() + port.size() || n == 0 || n > 65535) {
    throw std::runtime_error(what + ": '" + port + "' is not a port (1-65535)");
  }
  t.host = connect_host(host);
  t.port = port;
}

std::string read_token(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error(what + ": cannot read '" + path + "': " + std::strerror(errno));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string token = ss.str();
  const auto first = token.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) throw std::runtime_error(what + ": '" + path + "' is empty");
  token = token.substr(first, token.find_last_not_of(" \t\r\n") - first + 1);
  return token;
}

// ${VAR} in server.listen or server.token_file, as the daemon would expand it.
std::string expanded(const YAML::Node& node, const std::string& key, const std::string& file,
                     const std::string& override_flag) {
  if (!node.IsScalar()) throw std::runtime_error(file + ": " + key + " must be a string");
  std::string error;
  auto v = config::expand_env(node.Scalar(), config::process_env(), error);
  if (!v) {
    throw std::runtime_error(file + ": " + key + ": " + error + " in this shell; pass " +
                             override_flag);
  }
  return *v;
}

int print_failure(std::ostream& err, const char* command, const AdminReply& reply) {
  err << "relayd: " << command << " failed: " << error_message(reply.body) << " (HTTP "
      << reply.status << ")";
  // The daemon reads the token at start and reload: a token file changed since is not yet its.
  if (reply.status == 401) err << "; if the token file changed: systemctl reload relayd";
  err << '\n';
  return 1;
}

AdminTarget finish_token(const AdminOptions& options, YAML::Node& server, AdminTarget& t) {
  if (options.token_file) {
    t.token = read_token(*options.token_file, "--token-file");
  } else if (server["token_file"]) {
    const auto path =
        expanded(server["token_file"], "server.token_file", options.config_path, "--token-file");
    t.token = read_token(path, options.config_path + ": server.token_file");
  }
  return t;
}

}  // namespace

AdminTarget resolve_admin_target(const AdminOptions& options) {
  AdminTarget t;
  // --url first: a bad one is reported before any file is read.
  if (options.url) {
    const std::string& url = *options.url;
    constexpr std::string_view kHttp = "http://";
    if (url.rfind("https://", 0) == 0) {
      throw std::runtime_error("--url: the admin client does not speak TLS yet; use curl");
    }
    if (url.rfind(kHttp, 0) != 0) {
      throw std::runtime_error("--url: '" + url + "' must look like http://HOST:PORT");
    }
    std::string rest = url.substr(kHttp.size());
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    split_address(rest, "--url", t);
  }
  const bool need_file = !options.url || !options.token_file;
  YAML::Node server;
  if (need_file) {
    // A tolerant partial read: only the server: keys the client needs. The daemon validates the
    // whole file; an admin shell may lack the webhooks' secret variables (SPEC §1).
    std::ifstream in(options.config_path, std::ios::binary);
    if (!in && options.url && errno == ENOENT) return finish_token(options, server, t);
    if (!in) {
      throw std::runtime_error(options.config_path + ": cannot read config file: " +
                               std::strerror(errno) + " (or pass --url and --token-file)");
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    YAML::Node root;
    try {
      root = YAML::Load(ss.str());
    } catch (const YAML::Exception& e) {
      throw std::runtime_error(options.config_path + ":" + std::to_string(e.mark.line + 1) + ":" +
                               std::to_string(e.mark.column + 1) + ": " + e.msg);
    }
    if (root.IsMap() && root["server"] && root["server"].IsMap()) server = root["server"];
  }
  if (!options.url) {
    if (server["tls_cert"]) {
      throw std::runtime_error(
          "the admin client does not speak TLS yet; use curl against server.listen");
    }
    const auto listen =
        server["listen"] ? expanded(server["listen"], "server.listen", options.config_path, "--url")
                         : std::string("127.0.0.1:8686");
    split_address(listen, options.config_path + ": server.listen", t);
  }
  return finish_token(options, server, t);
}

AdminReply admin_request(const AdminTarget& target, const std::string& method,
                         const std::string& path, const std::string& body) {
  net::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  net::ip::tcp::resolver resolver(io);
  const auto endpoints = resolver.resolve(target.host, target.port, ec);
  if (ec) throw std::runtime_error("cannot resolve " + target.host + ": " + ec.message());
  stream.expires_after(std::chrono::seconds(60));
  stream.connect(endpoints, ec);
  if (ec) {
    throw std::runtime_error("cannot reach relayd at " + target.host + ":" + target.port + " (" +
                             ec.message() + "); is the daemon running?");
  }
  http::request<http::string_body> req{http::string_to_verb(method), path, 11};
  req.set(http::field::host, target.host + ":" + target.port);
  req.set(http::field::user_agent, std::string("relayd-cli/") + kVersion);
  req.set(http::field::content_type, "application/json");
  if (!target.token.empty()) req.set(http::field::authorization, "Bearer " + target.token);
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req, ec);
  if (ec) throw std::runtime_error("sending to relayd failed: " + ec.message());
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(16 * 1024 * 1024);
  http::read(stream, buffer, parser, ec);
  if (ec) throw std::runtime_error("reading relayd's answer failed: " + ec.message());
  return AdminReply{static_cast<int>(parser.get().result_int()), parser.get().body()};
}

int send_test(const AdminOptions& options, const std::string& webhook_id,
              const std::string& event_type, std::ostream& out, std::ostream& err) {
  try {
    const auto reply =
        admin_request(resolve_admin_target(options), "POST", "/v1/webhooks/" + webhook_id + "/test",
                      nlohmann::json{{"event", event_type}}.dump());
    if (reply.status != 200) return print_failure(err, "send-test", reply);
    const auto j = nlohmann::json::parse(reply.body);
    const auto latency = j.value("latency_ms", 0);
    if (j.contains("status") && j["status"].is_number_integer()) {
      const int status = j["status"].get<int>();
      out << "webhook " << webhook_id << ": HTTP " << status << " in " << latency << " ms\n";
      const auto response_body = j.value("body", std::string());
      if (!response_body.empty()) out << "response body:\n" << response_body << '\n';
      return status >= 200 && status < 300 ? 0 : 1;
    }
    out << "webhook " << webhook_id << ": failed after " << latency
        << " ms: " << j.value("error", std::string("unknown error")) << '\n';
    return 1;
  } catch (const std::exception& e) {
    err << "relayd: send-test failed: " << e.what() << '\n';
    return 1;
  }
}

int redeliver(const AdminOptions& options, const std::string& delivery_id, std::ostream& out,
              std::ostream& err) {
  try {
    const auto reply = admin_request(resolve_admin_target(options), "POST",
                                     "/v1/deliveries/" + delivery_id + "/redeliver", "{}");
    if (reply.status / 100 != 2) return print_failure(err, "redeliver", reply);
    out << "delivery " << delivery_id << " is due again now\n";
    return 0;
  } catch (const std::exception& e) {
    err << "relayd: redeliver failed: " << e.what() << '\n';
    return 1;
  }
}

int recover(const AdminOptions& options, const std::string& webhook_id, const std::string& since,
            const std::optional<std::string>& until, std::ostream& out, std::ostream& err) {
  try {
    nlohmann::json body = {{"since", since}};
    if (until) body["until"] = *until;
    const auto reply = admin_request(resolve_admin_target(options), "POST",
                                     "/v1/webhooks/" + webhook_id + "/recover", body.dump());
    if (reply.status != 200) return print_failure(err, "recover", reply);
    const auto j = nlohmann::json::parse(reply.body);
    out << "webhook " << webhook_id << ": " << j.value("recovered", 0)
        << " failed deliveries created in [" << j.value("since", since) << ", "
        << j.value("until", std::string("now")) << ") are due again\n";
    return 0;
  } catch (const std::exception& e) {
    err << "relayd: recover failed: " << e.what() << '\n';
    return 1;
  }
}

int set_webhook_enabled(const AdminOptions& options, const std::string& webhook_id, bool enable,
                        std::ostream& out, std::ostream& err) {
  const char* what = enable ? "enable" : "disable";
  try {
    const auto reply = admin_request(resolve_admin_target(options), "POST",
                                     "/v1/webhooks/" + webhook_id + "/" + what, "{}");
    if (reply.status != 200) return print_failure(err, what, reply);
    const auto j = nlohmann::json::parse(reply.body);
    const auto state = j.value("state", std::string("?"));
    out << "webhook " << webhook_id << ": " << state;
    if (state == "disabled_by_config") {
      out << " (enabled: false in the config file; change it there and reload)";
    }
    out << '\n';
    return 0;
  } catch (const std::exception& e) {
    err << "relayd: " << what << " failed: " << e.what() << '\n';
    return 1;
  }
}

int reload(const AdminOptions& options, std::optional<pid_t> pid, std::ostream& out,
           std::ostream& err) {
  try {
    const auto target = resolve_admin_target(options);
    const auto reply = admin_request(target, "POST", "/v1/reload", "{}");
    if (reply.status == 200) {
      const auto j = nlohmann::json::parse(reply.body, nullptr, false);
      out << "reload: configuration applied";
      if (j.is_object() && j.contains("webhooks")) out << " (" << j["webhooks"] << " webhooks)";
      out << '\n';
      if (j.is_object() && j.contains("warnings") && j["warnings"].is_array()) {
        for (const auto& w : j["warnings"]) {
          if (w.is_string()) err << "warning: " << w.get<std::string>() << '\n';
        }
      }
      return 0;
    }
    if (reply.status == 401 && pid && !target.token.empty()) {
      // The token file changed since the daemon last read it: it refuses the new token until it
      // reloads. SIGHUP it (systemd passes $MAINPID) and wait until the new token is accepted —
      // which is exactly "the new config, token included, is in effect".
      if (::kill(*pid, SIGHUP) != 0) {
        err << "relayd: reload failed: cannot signal pid " << *pid << ": " << std::strerror(errno)
            << '\n';
        return 1;
      }
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (admin_request(target, "GET", "/v1/webhooks", "").status == 200) {
          out << "reload: configuration applied (with the new token)\n";
          return 0;
        }
      }
      err << "relayd: reload rejected: the daemon still refuses the token after SIGHUP; the "
             "previous configuration stays in effect (see journalctl -u relayd)\n";
      return 1;
    }
    const auto j = nlohmann::json::parse(reply.body, nullptr, false);
    if (reply.status == 422 && j.is_object() && j.contains("error") &&
        j["error"].contains("problems") && j["error"]["problems"].is_array()) {
      for (const auto& p : j["error"]["problems"]) {
        if (p.is_string()) err << p.get<std::string>() << '\n';
      }
      err << "relayd: reload rejected; the previous configuration stays in effect\n";
      return 1;
    }
    return print_failure(err, "reload", reply);
  } catch (const std::exception& e) {
    err << "relayd: reload failed: " << e.what() << '\n';
    return 1;
  }
}

int gen_secret(std::ostream& out, std::ostream& err) {
  try {
    out << common::new_webhook_secret() << '\n';
  } catch (const std::exception&) {
    err << "relayd: gen-secret failed: the random number generator is not available\n";
    return 1;
  }
  return 0;
}

}  // namespace relay::daemon
