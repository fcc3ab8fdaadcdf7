#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "relay/daemon/Cli.hpp"

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kGlibcMalloc = false;  // the sanitizer's allocator replaces glibc's
#else
constexpr bool kGlibcMalloc = true;
#endif

// glibc's per-thread cache keeps 7 freed blocks of each size. The daemon allocates and frees in
// bursts as large as its concurrency (64 requests, answers and records at a time), and every
// block beyond the 7 went through the locked arena: 256 took ~1.4 µs of CPU off each delivery
// and added 5% to the drain rate (docs/performance.md, "Issue 20, round 7"). glibc reads the
// setting from GLIBC_TUNABLES when a program starts only, so `serve` sets it and executes
// itself once; an operator's own tcache_count is left alone. If the exec fails (no /proc),
// relayd runs on with glibc's default.
void keep_more_freed_blocks(char** argv) {
  constexpr const char* kTunable = "glibc.malloc.tcache_count=256";
  const char* given = std::getenv("GLIBC_TUNABLES");
  const std::string before = given != nullptr ? given : "";
  if (before.find("glibc.malloc.tcache_count") != std::string::npos) return;
  const std::string tuned = before.empty() ? kTunable : before + ":" + kTunable;
  if (setenv("GLIBC_TUNABLES", tuned.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  if (given != nullptr) {
    setenv("GLIBC_TUNABLES", before.c_str(), 1);
  } else {
    unsetenv("GLIBC_TUNABLES");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (kGlibcMalloc && argc > 1 && std::strcmp(argv[1], "serve") == 0) keep_more_freed_blocks(argv);
  // glibc hands freed memory back to the kernel eagerly (per-thread arenas shrink, large blocks
  // are unmapped); under delivery load that meant page faults and TLB shootdowns on every
  // group commit — about 30% of the drain rate in bench/run. Keep the memory instead: RSS
  // stays bounded by the working set, which is small.
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
  try {
    return relay::daemon::run_cli(std::vector<std::string>(argv + 1, argv + argc), std::cout,
                                  std::cerr);
  } catch (const std::exception& e) {
    // Last resort: every expected failure is reported where it happens.
    std::cerr << "relayd: fatal: " << e.what() << '\n';
    return 1;
  }
}
