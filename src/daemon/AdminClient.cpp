#include "relay/daemon/AdminClient.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <ostream>
#include <stdexcept>

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

}  // namespace

AdminReply admin_request(const std::string& config_path, const std::string& method,
                         const std::string& target, const std::string& body) {
  const auto cfg = config::load_config_file(config_path);
  if (cfg->server.tls_cert) {
    throw std::runtime_error("the admin client does not speak TLS yet; use curl against " +
                             cfg->server.listen);
  }
  net::io_context io;
  beast::tcp_stream stream(io);
  const auto host = connect_host(cfg->server.listen_host);
  const auto port = std::to_string(cfg->server.listen_port);
  beast::error_code ec;
  net::ip::tcp::resolver resolver(io);
  const auto endpoints = resolver.resolve(host, port, ec);
  if (ec) throw std::runtime_error("cannot resolve " + host + ": " + ec.message());
  stream.expires_after(std::chrono::seconds(60));
  stream.connect(endpoints, ec);
  if (ec) {
    throw std::runtime_error("cannot reach relayd at " + host + ":" + port + " (" + ec.message() +
                             "); is the daemon running?");
  }
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, host + ":" + port);
  req.set(http::field::user_agent, std::string("relayd-cli/") + kVersion);
  req.set(http::field::content_type, "application/json");
  if (!cfg->server.token.empty()) {
    req.set(http::field::authorization, "Bearer " + cfg->server.token);
  }
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

int send_test(const std::string& config_path, const std::string& webhook_id,
              const std::string& event_type, std::ostream& out, std::ostream& err) {
  try {
    const auto reply = admin_request(config_path, "POST", "/v1/webhooks/" + webhook_id + "/test",
                                     nlohmann::json{{"event", event_type}}.dump());
    if (reply.status != 200) {
      err << "relayd: send-test failed: " << error_message(reply.body) << " (HTTP " << reply.status
          << ")\n";
      return 1;
    }
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
  } catch (const config::ConfigError& e) {
    for (const auto& p : e.problems()) err << p.to_string() << '\n';
    return 1;
  } catch (const std::exception& e) {
    err << "relayd: send-test failed: " << e.what() << '\n';
    return 1;
  }
}

int redeliver(const std::string& config_path, const std::string& delivery_id, std::ostream& out,
              std::ostream& err) {
  try {
    const auto reply =
        admin_request(config_path, "POST", "/v1/deliveries/" + delivery_id + "/redeliver", "{}");
    if (reply.status / 100 != 2) {
      err << "relayd: redeliver failed: " << error_message(reply.body) << " (HTTP " << reply.status
          << ")\n";
      return 1;
    }
    out << "delivery " << delivery_id << " is due again now\n";
    return 0;
  } catch (const config::ConfigError& e) {
    for (const auto& p : e.problems()) err << p.to_string() << '\n';
    return 1;
  } catch (const std::exception& e) {
    err << "relayd: redeliver failed: " << e.what() << '\n';
    return 1;
  }
}

}  // namespace relay::daemon
