#include <malloc.h>

#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "relay/daemon/Cli.hpp"

int main(int argc, char** argv) {
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
