// relay_loadgen: an HTTP/1.1 load generator for relayd's intake API (and for the bench
// receiver, to measure its ceiling). Keep-alive connections, one io_context, C++20 coroutines.
//
// Closed loop (default): every connection sends its next request as soon as the previous
// answer arrived. Open loop (--rate R): request i is due at start + i/R whatever happened to
// earlier ones, and its latency is counted from that due time, so a stalled server shows up in
// the percentiles instead of silently lowering the send rate (no coordinated omission).

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "BenchCommon.hpp"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

using relay::bench::LatencyHistogram;
using relay::bench::monotonic_ns;
using relay::bench::realtime_ns;

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t kMaxResponseBody = 64U * 1024U * 1024U;

constexpr std::string_view kUsage =
    R"(usage: relay_loadgen [options]
  --host H            server address (default 127.0.0.1; loopback only is intended)
  --port P            server port (default 8686)
  --path PATH         request target (default /v1/events, or /v1/events/batch with --batch)
  --method M          POST (default) or GET (GET sends no body, e.g. --path /healthz)
  --connections N     keep-alive connections (default 64)
  --duration S        run for S seconds (default 10 when --requests is not given)
  --requests N        send exactly N requests (then stop; bounded by --max-time)
  --rate R            open loop: R requests/s in total (default: closed loop, as fast as possible)
  --body-size BYTES   approximate size of each event's JSON (default 1024)
  --batch K           post {"events":[K events]} to the batch endpoint
  --event TYPE        event type (default ticket.created)
  --token T           send "Authorization: Bearer T"
  --id-prefix P       give every event a unique "id": P<conn>-<seq>[-<item>] (first key)
  --ids-out FILE      write "<event id> <send ns> <ack ns>" (CLOCK_REALTIME) per acked event
  --max-ids N         at most N lines in --ids-out (default 5000000)
  --threads N         threads running the io_context (1 or 2; default 1)
  --timeout S         per-request deadline: connect, write, read (default 10)
  --max-time S        hard cap on the whole run (default 600)
  --json              print one flat JSON object instead of the text report
  --quiet             print nothing (exit status only)
exit status: 0 when at least one response was 2xx, 1 when none was, 2 on a usage error
)";

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8686;
  std::string path;
  std::string method = "POST";
  int connections = 64;
  double duration_s = 0;
  std::int64_t requests = 0;
  double rate = 0;
  std::size_t body_size = 1024;
  int batch = 0;
  std::string event = "ticket.created";
  std::string token;
  std::string id_prefix;
  std::string ids_out;
  std::uint64_t max_ids = 5'000'000;
  int threads = 1;
  double timeout_s = 10;
  double max_time_s = 600;
  bool json = false;
  bool quiet = false;
};

Options parse_options(int argc, char** argv) {
  using relay::bench::parse_double;
  using relay::bench::parse_int;
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(arg) + " needs a value");
      return argv[++i];
    };
    if (arg == "--host") {
      o.host = value();
    } else if (arg == "--port") {
      const auto p = parse_int(value(), arg);
      if (p < 1 || p > 65535) throw std::invalid_argument("--port: out of range");
      o.port = static_cast<std::uint16_t>(p);
    } else if (arg == "--path") {
      o.path = value();
    } else if (arg == "--method") {
      o.method = value();
      if (o.method != "POST" && o.method != "GET") {
        throw std::invalid_argument("--method: POST or GET");
      }
    } else if (arg == "--connections") {
      o.connections = static_cast<int>(parse_int(value(), arg));
    } else if (arg == "--duration") {
      o.duration_s = parse_double(value(), arg);
    } else if (arg == "--requests") {
      o.requests = parse_int(value(), arg);
    } else if (arg == "--rate") {
      o.rate = parse_double(value(), arg);
    } else if (arg == "--body-size") {
      o.body_size = static_cast<std::size_t>(parse_int(value(), arg));
    } else if (arg == "--batch") {
      o.batch = static_cast<int>(parse_int(value(), arg));
    } else if (arg == "--event") {
      o.event = value();
    } else if (arg == "--token") {
      o.token = value();
    } else if (arg == "--id-prefix") {
      o.id_prefix = value();
    } else if (arg == "--ids-out") {
      o.ids_out = value();
    } else if (arg == "--max-ids") {
      o.max_ids = static_cast<std::uint64_t>(parse_int(value(), arg));
    } else if (arg == "--threads") {
      o.threads = static_cast<int>(parse_int(value(), arg));
    } else if (arg == "--timeout") {
      o.timeout_s = parse_double(value(), arg);
    } else if (arg == "--max-time") {
      o.max_time_s = parse_double(value(), arg);
    } else if (arg == "--json") {
      o.json = true;
    } else if (arg == "--quiet") {
      o.quiet = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown option " + std::string(arg));
    }
  }
  if (o.connections < 1 || o.connections > 10000) {
    throw std::invalid_argument("--connections: 1..10000");
  }
  if (o.threads < 1 || o.threads > 16) throw std::invalid_argument("--threads: 1..16");
  if (o.batch < 0 || o.batch > 100000) throw std::invalid_argument("--batch: 0..100000");
  if (o.rate < 0 || o.duration_s < 0 || o.requests < 0 || o.timeout_s <= 0 || o.max_time_s <= 0) {
    throw std::invalid_argument("--rate, --duration, --requests, --timeout: must be positive");
  }
  if (o.body_size > 64U * 1024U * 1024U) throw std::invalid_argument("--body-size: too large");
  for (const char c : o.id_prefix) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) throw std::invalid_argument("--id-prefix: only A-Za-z0-9_.:- allowed");
  }
  if (o.duration_s == 0 && o.requests == 0) o.duration_s = 10;
  if (o.path.empty()) o.path = o.batch > 0 ? "/v1/events/batch" : "/v1/events";
  return o;
}

// One event object, about `size` bytes: {["id":"…",]"event":"T","data":{"pad":"xxx…"}}. The id
// comes first so that the receiver, driven directly, can read it like a relayd payload.
void append_event(std::string& out, const Options& o, std::string_view id) {
  const std::size_t start = out.size();
  out += '{';
  if (!id.empty()) {
    out += R"("id":")";
    out += id;
    out += "\",";
  }
  out += R"("event":")";
  out += o.event;
  out += R"(","data":{"pad":")";
  const std::size_t used = out.size() - start + 3;
  if (o.body_size > used) out.append(o.body_size - used, 'x');
  out += "\"}}";
}

struct ConnStats {
  LatencyHistogram latency;
  std::map<unsigned, std::uint64_t> status;
  std::uint64_t sent = 0;
  std::uint64_t events_acked = 0;
  std::uint64_t err_connect = 0;
  std::uint64_t err_write = 0;
  std::uint64_t err_read = 0;
  std::uint64_t err_timeout = 0;
  std::int64_t last_done = 0;
  std::string ids;  // "<id> <send ns> <ack ns>\n" lines
};

struct Shared {
  explicit Shared(const Options& o) : opt(o) {}
  const Options& opt;
  tcp::resolver::results_type endpoints;
  std::string host_header;
  std::atomic<std::uint64_t> next_ticket{0};
  std::atomic<int> connected{0};
  std::atomic<bool> started{false};
  std::atomic<std::int64_t> start{0};
  std::int64_t launch = 0;
  std::int64_t hard_deadline = 0;
  std::atomic<std::uint64_t> ids_written{0};

  [[nodiscard]] std::int64_t deadline() const {
    if (opt.duration_s <= 0) return hard_deadline;
    return std::min(hard_deadline, start.load() + static_cast<std::int64_t>(opt.duration_s * 1e9));
  }
};

std::string request_head(const Shared& sh, std::size_t content_length) {
  const Options& o = sh.opt;
  std::string head = o.method + " " + o.path + " HTTP/1.1\r\nHost: " + sh.host_header + "\r\n";
  if (!o.token.empty()) head += "Authorization: Bearer " + o.token + "\r\n";
  if (o.method == "POST") {
    head += "Content-Type: application/json\r\nContent-Length: " + std::to_string(content_length) +
            "\r\n";
  }
  head += "\r\n";
  return head;
}

// Builds the whole request; `ids` gets the event ids it carries (when --id-prefix is set).
void build_request(const Shared& sh, int conn, std::uint64_t seq, std::string& out,
                   std::vector<std::string>& ids) {
  const Options& o = sh.opt;
  ids.clear();
  if (o.method == "GET") {
    out = request_head(sh, 0);
    return;
  }
  auto make_id = [&](int item) {
    if (o.id_prefix.empty()) return std::string();
    std::string id = o.id_prefix + std::to_string(conn) + "-" + std::to_string(seq);
    if (item >= 0) id += "-" + std::to_string(item);
    ids.push_back(id);
    return id;
  };
  std::string body;
  if (o.batch > 0) {
    body.reserve(static_cast<std::size_t>(o.batch) * (o.body_size + 64) + 16);
    body += R"({"events":[)";
    for (int k = 0; k < o.batch; ++k) {
      if (k > 0) body += ',';
      append_event(body, o, make_id(k));
    }
    body += "]}";
  } else {
    append_event(body, o, make_id(-1));
  }
  out = request_head(sh, body.size());
  out += body;
}

// Event ids from a 2xx intake answer: {"id":…} or {"events":[{"id":…},…]}.
void ids_from_answer(std::string_view body, std::vector<std::string>& ids) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return;
  auto take = [&](const nlohmann::json& obj) {
    if (obj.is_object() && obj.contains("id") && obj["id"].is_string()) {
      ids.push_back(obj["id"].get<std::string>());
    }
  };
  if (j.contains("events") && j["events"].is_array()) {
    for (const auto& e : j["events"]) take(e);
  } else {
    take(j);
  }
}

net::awaitable<void> pause(net::steady_timer& timer, std::int64_t ns) {
  timer.expires_after(std::chrono::nanoseconds(ns));
  co_await timer.async_wait(kUseTuple);
}

net::awaitable<void> run_connection(Shared& sh, ConnStats& st, int conn) {
  const Options& o = sh.opt;
  const auto timeout =
      std::chrono::nanoseconds(static_cast<std::int64_t>(o.timeout_s * 1'000'000'000));
  beast::tcp_stream stream(co_await net::this_coro::executor);
  net::steady_timer timer(stream.get_executor());
  beast::flat_buffer buffer;
  bool connected = false;

  auto connect = [&]() -> net::awaitable<bool> {
    stream.expires_after(timeout);
    auto [ec, ep] = co_await stream.async_connect(sh.endpoints, kUseTuple);
    if (ec) {
      ++st.err_connect;
      if (ec == beast::error::timeout) ++st.err_timeout;
      stream.close();
      co_return false;
    }
    stream.socket().set_option(tcp::no_delay(true));
    buffer.clear();
    co_return true;
  };

  // Connect before the clock starts; the last connection to get there starts it.
  connected = co_await connect();
  if (sh.connected.fetch_add(1) + 1 == o.connections) {
    sh.start.store(monotonic_ns());
    sh.started.store(true);
  }
  while (!sh.started.load() && monotonic_ns() < sh.hard_deadline) {
    co_await pause(timer, 1'000'000);
  }
  if (!sh.started.load()) co_return;

  // A fixed body is built once; ids or GET change nothing per request.
  const bool per_request = !o.id_prefix.empty();
  std::string request;
  std::vector<std::string> ids;
  if (!per_request) build_request(sh, conn, 0, request, ids);
  const std::int64_t start = sh.start.load();
  const std::int64_t deadline = sh.deadline();
  const double ns_per_request = o.rate > 0 ? 1e9 / o.rate : 0;
  std::uint64_t seq = 0;

  for (;;) {
    const std::uint64_t ticket = sh.next_ticket.fetch_add(1);
    if (o.requests > 0 && ticket >= static_cast<std::uint64_t>(o.requests)) break;
    std::int64_t intended = 0;
    if (o.rate > 0) {
      intended = start + static_cast<std::int64_t>(static_cast<double>(ticket) * ns_per_request);
      if (intended >= deadline) break;
      const std::int64_t wait = intended - monotonic_ns();
      if (wait > 0) co_await pause(timer, wait);
    } else {
      intended = monotonic_ns();
      if (intended >= deadline) break;
    }
    if (!connected) {
      connected = co_await connect();
      if (!connected) {
        co_await pause(timer, 20'000'000);  // the server is down: do not spin
        continue;
      }
    }
    if (per_request) build_request(sh, conn, seq++, request, ids);

    const std::int64_t send_rt = realtime_ns();
    stream.expires_after(timeout);
    auto [wec, wn] = co_await net::async_write(stream, net::buffer(request), kUseTuple);
    if (wec) {
      ++st.err_write;
      if (wec == beast::error::timeout) ++st.err_timeout;
      stream.close();
      connected = false;
      continue;
    }
    ++st.sent;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBody);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, kUseTuple);
    if (rec) {
      ++st.err_read;
      if (rec == beast::error::timeout) ++st.err_timeout;
      stream.close();
      connected = false;
      continue;
    }
    const std::int64_t done = monotonic_ns();
    const std::int64_t ack_rt = realtime_ns();
    st.last_done = done;
    st.latency.record(done - intended);
    const auto& res = parser.get();
    const unsigned code = res.result_int();
    ++st.status[code];
    if (code / 100 == 2) {
      st.events_acked += o.batch > 0 ? static_cast<std::uint64_t>(o.batch) : 1;
      if (!o.ids_out.empty() && o.method == "POST") {
        if (!per_request) ids_from_answer(res.body(), ids);
        for (const auto& id : ids) {
          if (sh.ids_written.fetch_add(1) >= o.max_ids) break;
          st.ids += id;
          st.ids += ' ';
          st.ids += std::to_string(send_rt);
          st.ids += ' ';
          st.ids += std::to_string(ack_rt);
          st.ids += '\n';
        }
        if (!per_request) ids.clear();
      }
    }
    if (!res.keep_alive()) {
      stream.close();
      connected = false;
    }
  }
  if (connected) {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
  }
}

struct Totals {
  LatencyHistogram latency;
  std::map<unsigned, std::uint64_t> status;
  std::uint64_t sent = 0, events_acked = 0, ok = 0;
  std::uint64_t err_connect = 0, err_write = 0, err_read = 0, err_timeout = 0;
  double elapsed_s = 0;
};

Totals merge(const std::vector<ConnStats>& stats, const Shared& sh) {
  Totals t;
  std::int64_t last = 0;
  for (const auto& s : stats) {
    t.latency.merge(s.latency);
    for (const auto& [code, n] : s.status) {
      t.status[code] += n;
      if (code / 100 == 2) t.ok += n;
    }
    t.sent += s.sent;
    t.events_acked += s.events_acked;
    t.err_connect += s.err_connect;
    t.err_write += s.err_write;
    t.err_read += s.err_read;
    t.err_timeout += s.err_timeout;
    last = std::max(last, s.last_done);
  }
  const std::int64_t start = sh.started.load() ? sh.start.load() : sh.launch;
  if (last <= start) last = monotonic_ns();
  t.elapsed_s = static_cast<double>(last - start) / 1e9;
  return t;
}

void report(const Options& o, const Totals& t) {
  using relay::bench::ms;
  const std::uint64_t errors = t.err_connect + t.err_write + t.err_read;
  const double eps = t.elapsed_s > 0 ? static_cast<double>(t.events_acked) / t.elapsed_s : 0;
  const double rps = t.elapsed_s > 0 ? static_cast<double>(t.sent) / t.elapsed_s : 0;
  std::uint64_t by_class[6] = {};
  for (const auto& [code, n] : t.status) by_class[std::min(code / 100, 5U)] += n;
  char rate_buf[64];
  if (o.json) {
    std::string s = "{";
    auto add = [&](std::string_view key, const std::string& value) {
      if (s.size() > 1) s += ',';
      s += '"';
      s += key;
      s += "\":";
      s += value;
    };
    auto num = [](double v) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.1f", v);
      return std::string(buf);
    };
    add("target", "\"" + o.host + ":" + std::to_string(o.port) + o.path + "\"");
    add("connections", std::to_string(o.connections));
    add("rate", num(o.rate));
    add("batch", std::to_string(o.batch));
    char elapsed[32];
    std::snprintf(elapsed, sizeof elapsed, "%.3f", t.elapsed_s);
    add("elapsed_s", elapsed);
    add("requests", std::to_string(t.sent));
    add("responses", std::to_string(t.latency.count()));
    add("status_2xx", std::to_string(by_class[2]));
    add("status_4xx", std::to_string(by_class[4]));
    add("status_5xx", std::to_string(by_class[5]));
    for (const auto& [code, n] : t.status) add("status_" + std::to_string(code), std::to_string(n));
    add("errors", std::to_string(errors));
    add("errors_connect", std::to_string(t.err_connect));
    add("errors_write", std::to_string(t.err_write));
    add("errors_read", std::to_string(t.err_read));
    add("errors_timeout", std::to_string(t.err_timeout));
    add("events_acked", std::to_string(t.events_acked));
    add("events_per_s", num(eps));
    add("requests_per_s", num(rps));
    add("p50_ms", ms(t.latency.quantile(0.50)));
    add("p90_ms", ms(t.latency.quantile(0.90)));
    add("p99_ms", ms(t.latency.quantile(0.99)));
    add("p999_ms", ms(t.latency.quantile(0.999)));
    add("max_ms", ms(t.latency.max()));
    add("mean_ms", ms(static_cast<std::uint64_t>(t.latency.mean())));
    s += "}\n";
    std::cout << s;
    return;
  }
  if (o.rate > 0) {
    std::snprintf(rate_buf, sizeof rate_buf, "open loop at %.0f req/s", o.rate);
  } else {
    std::snprintf(rate_buf, sizeof rate_buf, "closed loop");
  }
  std::printf("relay_loadgen: %s %s:%u%s, %d connections, %s%s\n", o.method.c_str(), o.host.c_str(),
              o.port, o.path.c_str(), o.connections, rate_buf,
              o.batch > 0 ? (", batch " + std::to_string(o.batch)).c_str() : "");
  std::printf("  elapsed        %.3f s\n", t.elapsed_s);
  std::printf("  requests sent  %llu (%.1f/s)\n", static_cast<unsigned long long>(t.sent), rps);
  std::printf("  responses     ");
  for (const auto& [code, n] : t.status) {
    std::printf(" %u: %llu", code, static_cast<unsigned long long>(n));
  }
  std::printf(
      "\n  errors         %llu (connect %llu, write %llu, read %llu; timeouts %llu)\n",
      static_cast<unsigned long long>(errors), static_cast<unsigned long long>(t.err_connect),
      static_cast<unsigned long long>(t.err_write), static_cast<unsigned long long>(t.err_read),
      static_cast<unsigned long long>(t.err_timeout));
  std::printf("  events acked   %llu (%.1f/s)\n", static_cast<unsigned long long>(t.events_acked),
              eps);
  std::printf("  latency ms     p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
              ms(t.latency.quantile(0.5)).c_str(), ms(t.latency.quantile(0.9)).c_str(),
              ms(t.latency.quantile(0.99)).c_str(), ms(t.latency.quantile(0.999)).c_str(),
              ms(t.latency.max()).c_str());
}

int run(const Options& o) {
  net::io_context ioc(o.threads);
  Shared sh(o);
  {
    tcp::resolver resolver(ioc);
    sh.endpoints = resolver.resolve(o.host, std::to_string(o.port));
  }
  sh.host_header = o.host + ":" + std::to_string(o.port);
  sh.launch = monotonic_ns();
  sh.hard_deadline = sh.launch + static_cast<std::int64_t>(o.max_time_s * 1e9);

  std::vector<ConnStats> stats(static_cast<std::size_t>(o.connections));
  for (int c = 0; c < o.connections; ++c) {
    net::co_spawn(ioc, run_connection(sh, stats[static_cast<std::size_t>(c)], c),
                  [](const std::exception_ptr& e) {
                    if (!e) return;
                    try {
                      std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                      std::cerr << "relay_loadgen: connection failed: " << ex.what() << '\n';
                    }
                  });
  }
  std::vector<std::thread> extra;
  for (int i = 1; i < o.threads; ++i) extra.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : extra) t.join();

  const Totals totals = merge(stats, sh);
  if (!o.ids_out.empty()) {
    std::ofstream out(o.ids_out, std::ios::binary | std::ios::trunc);
    for (const auto& s : stats) out << s.ids;
    if (!out) {
      std::cerr << "relay_loadgen: cannot write " << o.ids_out << '\n';
      return 1;
    }
  }
  if (!o.quiet) report(o, totals);
  return totals.ok > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "relay_loadgen: " << e.what() << '\n' << kUsage;
    return 2;
  }
  try {
    return run(options);
  } catch (const std::exception& e) {
    std::cerr << "relay_loadgen: " << e.what() << '\n';
    return 1;
  }
}
