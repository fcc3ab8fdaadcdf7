// relay_bench_signing: the CPU cost of building one delivery request (headers + signatures)
// per signature scheme, on one thread, with a payload of a given size. Used for issue 15's
// bound "CPU per delivery with `both` within 3 µs of `relay`" (bench/README.md). The full-drain
// A/B with `bench/run --signature both` measures the same difference end to end, but the
// machine's run-to-run noise (several µs per delivery) hides a difference this small there.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "relay/common/Base64.hpp"
#include "relay/config/Config.hpp"
#include "relay/delivery/RequestBuilder.hpp"

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double ns_per_request(const relay::config::WebhookConfig& w, const std::string& payload, int n) {
  const relay::config::DeliveryConfig d;
  std::size_t sink = 0;
  const auto now = relay::common::now_ms();
  const double start = cpu_seconds();
  for (int i = 0; i < n; ++i) {
    auto r = relay::delivery::build_request(w, d, "dlv_01JDXABCDEFGHJKMNPQRSTVWXY",
                                            "ticket.created", payload, now);
    sink += r.headers.size();
  }
  const double elapsed = cpu_seconds() - start;
  if (sink == 0) std::puts("");
  return elapsed * 1e9 / n;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t size = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1024;
  const int n = argc > 2 ? std::atoi(argv[2]) : 200000;
  const std::string payload(size, 'x');
  relay::config::WebhookConfig w;
  w.id = "crm";
  w.url = "https://crm.example.com/hooks";
  w.signing_key = std::string(32, 'k');
  w.secret = "whsec_" + relay::common::base64_encode(w.signing_key);
  w.headers = {{"X-Team", "support"}};
  std::printf("payload %zu bytes, %d requests per scheme, CPU ns per request (median of 5)\n", size,
              n);
  for (const auto scheme :
       {relay::config::SignatureScheme::kRelay, relay::config::SignatureScheme::kStandard,
        relay::config::SignatureScheme::kBoth}) {
    w.signature = scheme;
    double runs[5];
    for (double& r : runs) r = ns_per_request(w, payload, n);
    std::sort(std::begin(runs), std::end(runs));
    std::printf("%-8s %8.0f ns\n", std::string(relay::config::to_string(scheme)).c_str(), runs[2]);
  }
  // With one previous secret in the rotation window: one more HMAC for standard/both.
  relay::config::PreviousSecret prev;
  prev.key = std::string(32, 'o');
  prev.secret = "whsec_" + relay::common::base64_encode(prev.key);
  prev.expires = relay::common::now_ms() + std::chrono::hours(1);
  w.previous_secrets.push_back(prev);
  w.signature = relay::config::SignatureScheme::kBoth;
  double runs[5];
  for (double& r : runs) r = ns_per_request(w, payload, n);
  std::sort(std::begin(runs), std::end(runs));
  std::printf("%-8s %8.0f ns  (both, one previous secret)\n", "rotating", runs[2]);
  return 0;
}
