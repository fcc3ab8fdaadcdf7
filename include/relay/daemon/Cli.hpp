#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace relay::daemon {

/// The whole command line of relayd (SPEC §1). Returns the exit code: 0 ok, 1 bad config or
/// failed request, 2 usage error. Errors are one line on `err`.
int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace relay::daemon
