// Routing, the one bearer check and framing, decided from the header alone (issue #13).
#include "Router.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

namespace relay::server {
namespace {

Handler named(std::string name) {
  return [name](Request, std::function<void(Response)> respond) {
    respond(Response{200, "text/plain", name, {}});
  };
}

std::string run(const RouteDecision& d) {
  std::string body;
  if (d.handler) (*d.handler)(Request{}, [&](Response r) { body = r.body; });
  return body;
}

Router table() {
  Router router;
  router.add("POST", "/v1/events", named("events"));
  router.add("GET", "/healthz", named("health"));
  router.add("GET", "/metrics", named("metrics"));
  router.add("GET", "/v1/deliveries/", named("delivery-prefix"));
  router.add("GET", "/v1/deliveries/special", named("delivery-exact"));
  return router;
}

TEST(Router, OneTokenCheckForEveryProtectedPathBeforeRouting) {
  const auto router = table();
  for (const char* path : {"/v1/events", "/metrics", "/v1/nope", "/v1"}) {
    const auto d = router.decide("GET", path, std::nullopt, "T");
    ASSERT_TRUE(d.refusal) << path;
    EXPECT_EQ(d.refusal->status, 401) << path;
  }
  // The same spellings pass on /metrics as on /v1 (issue #13 item 6).
  for (const char* auth : {"Bearer T", "bearer T", "Bearer  T", "BEARER T "}) {
    EXPECT_EQ(run(router.decide("GET", "/metrics", std::string_view(auth), "T")), "metrics")
        << auth;
    EXPECT_EQ(run(router.decide("POST", "/v1/events", std::string_view(auth), "T")), "events")
        << auth;
  }
  EXPECT_EQ(router.decide("GET", "/metrics", std::string_view("Bearer TT"), "T").refusal->status,
            401);
  // Probes are open; without a configured token nothing is protected.
  EXPECT_EQ(run(router.decide("GET", "/healthz", std::nullopt, "T")), "health");
  EXPECT_EQ(run(router.decide("GET", "/metrics", std::nullopt, "")), "metrics");
  EXPECT_TRUE(requires_token("/metrics"));
  EXPECT_FALSE(requires_token("/metricsx"));
  EXPECT_FALSE(requires_token("/v1x"));
  EXPECT_FALSE(requires_token("/readyz"));
}

TEST(Router, NotFoundMethodNotAllowedAndBestMatch) {
  const auto router = table();
  EXPECT_EQ(router.decide("GET", "/nope", std::nullopt, "").refusal->status, 404);
  const auto wrong = router.decide("GET", "/v1/events", std::nullopt, "");
  ASSERT_TRUE(wrong.refusal);
  EXPECT_EQ(wrong.refusal->status, 405);
  ASSERT_EQ(wrong.refusal->headers.size(), 1U);
  EXPECT_EQ(wrong.refusal->headers[0].second, "POST");
  EXPECT_EQ(run(router.decide("GET", "/v1/deliveries/dlv_1", std::nullopt, "")), "delivery-prefix");
  EXPECT_EQ(run(router.decide("GET", "/v1/deliveries/special", std::nullopt, "")),
            "delivery-exact");
}

TEST(Router, TransferEncodingOtherThanChunkedIsRefused) {
  EXPECT_FALSE(transfer_encoding_error(std::nullopt));
  EXPECT_FALSE(transfer_encoding_error("chunked"));
  EXPECT_FALSE(transfer_encoding_error(" Chunked "));
  for (const char* te : {"identity", "gzip", "xchunked", "chunked, identity", "gzip, chunked",
                         "chunked, chunked", "", " , ", "chunked;q=1", "chunked\x0b"}) {
    EXPECT_TRUE(transfer_encoding_error(std::string_view(te))) << te;
  }
}

TEST(Router, TargetSplitsAndDecodesTheQuery) {
  Request r;
  split_target("/v1/deliveries?webhook=a%20b&status=+x&&flag", r);
  EXPECT_EQ(r.path, "/v1/deliveries");
  ASSERT_EQ(r.query.size(), 3U);
  EXPECT_EQ(r.query[0], (std::pair<std::string, std::string>{"webhook", "a b"}));
  EXPECT_EQ(r.query[1], (std::pair<std::string, std::string>{"status", " x"}));
  EXPECT_EQ(r.query[2], (std::pair<std::string, std::string>{"flag", ""}));
}

TEST(Router, FdLimitLeavesRoomForTheReserve) {
  const auto cap = connections_fitting_fd_limit(100, 64);
  EXPECT_GE(cap, 100U);  // the test process's limit (or its hard limit) fits 164 descriptors
  EXPECT_EQ(connections_fitting_fd_limit(1, std::numeric_limits<std::size_t>::max() / 2), 1U);
}

// The soft limit goes all the way to the hard one, not just to what the listener needs: idle
// delivery connections to many origins are not in the reserve.
TEST(Router, FdLimitRaisesTheSoftLimitToTheHardOne) {
  rlimit before{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
  ASSERT_NE(before.rlim_max, RLIM_INFINITY) << "this test needs a finite hard limit";
  ASSERT_GT(before.rlim_max, 512U) << "this test needs a hard limit above 512";
  rlimit lowered = before;
  lowered.rlim_cur = 256;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  const auto cap = connections_fitting_fd_limit(100, 64);
  rlimit after{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_EQ(after.rlim_cur, before.rlim_max);
  EXPECT_EQ(cap, static_cast<std::size_t>(before.rlim_max) - 64);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &before), 0);
}

}  // namespace
}  // namespace relay::server
