#pragma once

// Hand-offs to another thread, collected while one thread answers many callbacks at once and
// handed over together when it is done.
//
// The store's writer completes a whole group commit's requests in a row; each intake answer
// used to be posted to its connection's strand on its own, waking an I/O thread per answer
// (futex wake-ups and context switches were ~38% of relayd's CPU at single-event intake). With
// a batch open around the callbacks, the answers for one event loop are posted to it once,
// and the I/O thread that takes them resumes each connection in turn.

#include <functional>
#include <vector>

namespace relay::common {

class HandOffBatch {
 public:
  /// Hands `calls` (non-empty, in the order added) over to `target`'s thread(s).
  using Flush = void (*)(void* target, std::vector<std::function<void()>> calls);

  /// Opens a batch on this thread; a batch opened inside another one collects nothing itself.
  HandOffBatch();
  /// Hands every target's calls over (one Flush per target).
  ~HandOffBatch();
  HandOffBatch(const HandOffBatch&) = delete;
  HandOffBatch& operator=(const HandOffBatch&) = delete;

  /// Whether a batch is open on this thread.
  static bool active();
  /// With a batch open on this thread: takes `call` for `target` and returns true. Otherwise
  /// returns false and leaves `call` alone (the caller hands it over itself).
  static bool add(void* target, Flush flush, std::function<void()>& call);

 private:
  struct Pending {
    void* target;
    Flush flush;
    std::vector<std::function<void()>> calls;
  };
  std::vector<Pending> pending_;
  bool outermost_;
};

}  // namespace relay::common
