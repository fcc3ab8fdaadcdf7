#include "HttpTestClient.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <stdexcept>

namespace relay::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::string HttpReply::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return v;
  }
  return {};
}

struct HttpTestClient::Impl {
  std::string host;
  std::uint16_t port;
  net::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  int opened = 0;

  void connect() {
    stream.emplace(io);
    net::ip::tcp::endpoint ep(net::ip::make_address(host), port);
    stream->expires_after(std::chrono::seconds(10));
    stream->connect(ep);
    buffer.clear();
    ++opened;
  }
};

HttpTestClient::HttpTestClient(std::string host, std::uint16_t port)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
}

HttpTestClient::~HttpTestClient() = default;

int HttpTestClient::connections_opened() const {
  return impl_->opened;
}

HttpReply HttpTestClient::request(const std::string& method, const std::string& target,
                                  const std::string& body,
                                  std::vector<std::pair<std::string, std::string>> headers,
                                  std::chrono::milliseconds timeout) {
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, impl_->host + ":" + std::to_string(impl_->port));
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  for (int round = 0; round < 2; ++round) {
    if (!impl_->stream) impl_->connect();
    beast::error_code ec;
    impl_->stream->expires_after(timeout);
    http::write(*impl_->stream, req, ec);
    if (ec) {
      impl_->stream.reset();
      if (round == 0) continue;
      throw std::runtime_error("write: " + ec.message());
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(*impl_->stream, impl_->buffer, parser, ec);
    if (ec) {
      impl_->stream.reset();
      // A keep-alive connection the server closed while idle: try once on a new one.
      if (round == 0 && (ec == http::error::end_of_stream || ec == net::error::connection_reset))
        continue;
      throw std::runtime_error("read: " + ec.message());
    }
    auto res = parser.release();
    HttpReply reply;
    reply.status = static_cast<int>(res.result_int());
    reply.body = res.body();
    for (const auto& f : res) {
      reply.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    if (!res.keep_alive()) impl_->stream.reset();
    return reply;
  }
  throw std::runtime_error("unreachable");
}

HttpReply HttpTestClient::post_json(const std::string& target, const std::string& body,
                                    std::vector<std::pair<std::string, std::string>> headers) {
  headers.emplace_back("Content-Type", "application/json");
  return request("POST", target, body, std::move(headers));
}

std::string raw_exchange(std::uint16_t port, const std::string& bytes,
                         std::chrono::milliseconds timeout) {
  net::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(timeout);
  stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  net::write(stream, net::buffer(bytes));
  std::string out;
  char buf[4096];
  beast::error_code ec;
  while (true) {
    const auto n = stream.read_some(net::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

}  // namespace relay::testing
