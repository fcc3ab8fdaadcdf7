#pragma once

#include <sys/types.h>

#include <cstdint>

namespace relay::testing {

/// A TCP port on 127.0.0.1 that was free a moment ago, for a server a test starts later
/// (relayd, PostgreSQL). Chosen at random below the kernel's ephemeral range: a port the kernel
/// hands out for bind(0) is also handed to the next outgoing connection or to another test
/// process asking the same way, and two tests then start servers on one port.
std::uint16_t unused_loopback_port();

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port` (from /proc), so a
/// test that polls a port for readiness knows it reached its own server and not another test's
/// that took the port first.
bool listens_on(pid_t pid, std::uint16_t port);

}  // namespace relay::testing
