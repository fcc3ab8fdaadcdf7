#include "IntakeLoad.hpp"

#include <array>
#include <random>
#include <string>

#include "HttpTestClient.hpp"

namespace relay::torture {
namespace {

// Types both test webhooks subscribe to (one has "*", the other "ticket.*" and "message.*").
constexpr std::array<const char*, 8> kTypes = {
    "ticket.created", "ticket.updated",  "ticket.status_changed",  "ticket.assigned",
    "ticket.deleted", "message.created", "message.customer_reply", "message.agent_reply"};

}  // namespace

IntakeLoad::IntakeLoad(EventLedger& ledger, std::uint16_t port, int clients, int cycle,
                       std::uint64_t seed, std::chrono::milliseconds max_think)
    : ledger_(ledger), port_(port), cycle_(cycle), max_think_(max_think) {
  std::mt19937_64 seeds(seed);
  for (int c = 0; c < clients; ++c) {
    threads_.emplace_back([this, c, s = seeds()] { run(c, s); });
  }
}

IntakeLoad::~IntakeLoad() {
  stop();
}

void IntakeLoad::stop() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void IntakeLoad::run(int client, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> percent(0, 99);
  relay::testing::HttpTestClient http("127.0.0.1", port_);
  int n = 0;
  auto make_event = [&] {
    PostedEvent e;
    e.id = "evt_c" + std::to_string(cycle_) + "_t" + std::to_string(client) + "_" +
           std::to_string(n++);
    e.type = kTypes[std::uniform_int_distribution<std::size_t>(0, kTypes.size() - 1)(rng)];
    e.data = {{"ticket", {{"id", "tkt_" + std::to_string(rng() % 100000)}, {"n", n}}},
              {"note", "caf\u00e9 \u2713 \"quoted\" \\ line\nbreak"},
              {"tags", nlohmann::json::array({"a", "b", rng() % 1000})}};
    // A few events the receiver refuses until the end, so that some deliveries run through
    // the whole retry schedule (and may end `failed`) across kills.
    if (percent(rng) < 2) e.data["doom"] = true;
    return e;
  };

  while (!stop_) {
    std::optional<std::size_t> post = ledger_.next_repost();
    if (!post) {
      const int kind = percent(rng);
      if (kind < 8) post = ledger_.add_duplicate(rng);
      if (!post && kind < 28) {
        std::vector<PostedEvent> events;
        const int size = std::uniform_int_distribution<int>(2, 12)(rng);
        for (int i = 0; i < size; ++i) events.push_back(make_event());
        post = ledger_.add_post(true, std::move(events));
      } else if (!post) {
        post = ledger_.add_post(false, {make_event()});
      }
    }
    const Post request = ledger_.post(*post);
    ++sent_;
    try {
      const auto reply = http.post_json(request.target(), request.body);
      ledger_.answered(*post, reply.status, reply.body);
    } catch (const std::exception&) {
      // The daemon died with this request in flight (or before it went out): its fate is
      // unknown until the next restart, when it is sent again.
      ledger_.lost(*post);
      ++lost_;
      return;
    }
    if (max_think_.count() > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(
          std::uniform_int_distribution<long>(0, max_think_.count())(rng)));
    }
  }
}

}  // namespace relay::torture
