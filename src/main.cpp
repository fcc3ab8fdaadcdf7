#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "relay/daemon/Cli.hpp"

int main(int argc, char** argv) {
  try {
    return relay::daemon::run_cli(std::vector<std::string>(argv + 1, argv + argc), std::cout,
                                  std::cerr);
  } catch (const std::exception& e) {
    // Last resort: every expected failure is reported where it happens.
    std::cerr << "relayd: fatal: " << e.what() << '\n';
    return 1;
  }
}
