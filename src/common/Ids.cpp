#include "relay/common/Ids.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>

namespace relay::common {

namespace {

constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

class UlidGenerator {
 public:
  std::string next() {
    const auto ms =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    std::lock_guard lock(mutex_);
    if (ms > last_ms_) {
      last_ms_ = ms;
      hi_ = rng_() & 0xFFFF;  // 16 bits
      lo_ = rng_();           // 64 bits
    } else {
      // Same (or earlier: clock stepped back) millisecond: increment the random part so the
      // ids stay strictly increasing within this process.
      if (++lo_ == 0) hi_ = (hi_ + 1) & 0xFFFF;
    }
    return encode(last_ms_, hi_, lo_);
  }

 private:
  static std::string encode(std::uint64_t ms, std::uint64_t hi, std::uint64_t lo) {
    // 128 bits = 48 time + 80 random, written as 26 base32 digits (the first holds 3 bits).
    std::array<char, 26> out{};
    unsigned __int128 v = (static_cast<unsigned __int128>(ms & 0xFFFFFFFFFFFFULL) << 80) |
                          (static_cast<unsigned __int128>(hi) << 64) | lo;
    for (int i = 25; i >= 0; --i) {
      out[static_cast<std::size_t>(i)] = kCrockford[static_cast<unsigned>(v & 31U)];
      v >>= 5;
    }
    return std::string(out.data(), out.size());
  }

  std::mutex mutex_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::uint64_t last_ms_ = 0;
  std::uint64_t hi_ = 0;
  std::uint64_t lo_ = 0;
};

UlidGenerator& generator() {
  static UlidGenerator g;
  return g;
}

}  // namespace

std::string new_ulid() {
  return generator().next();
}
std::string new_event_id() {
  return "evt_" + new_ulid();
}
std::string new_delivery_id() {
  return "dlv_" + new_ulid();
}

}  // namespace relay::common
