// The sd_notify protocol as systemd sees it: a datagram socket in NOTIFY_SOCKET.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "DaemonProcess.hpp"
#include "TestConfig.hpp"

namespace relay::testing {
namespace {

class NotifySocket {
 public:
  explicit NotifySocket(const std::filesystem::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("bind notify socket");
    }
    timeval tv{0, 100000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() { ::close(fd_); }

  /// Collects datagrams until one contains `needle` (returns true) or the timeout passes.
  bool wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      char buf[4096];
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        messages_.emplace_back(buf, static_cast<std::size_t>(n));
        if (messages_.back().find(needle) != std::string::npos) return true;
      }
    }
    return false;
  }
  [[nodiscard]] std::string all() const {
    std::string s;
    for (const auto& m : messages_) s += "[" + m + "] ";
    return s;
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::vector<std::string> messages_;
};

TEST(SystemdNotify, ReadyReloadingWatchdogStopping) {
  TempDir dir;
  TestConfig cfg;
  cfg.port = free_port();
  cfg.db = dir.path() / "relayd.db";
  NotifySocket sock(dir.path() / "notify.sock");
  DaemonProcess daemon(dir.path(), cfg.yaml());
  daemon.start(cfg.port, {{"NOTIFY_SOCKET", (dir.path() / "notify.sock").string()},
                          {"WATCHDOG_USEC", "200000"}});
  EXPECT_TRUE(sock.wait_for("READY=1", std::chrono::seconds(5))) << sock.all();
  EXPECT_TRUE(sock.wait_for("WATCHDOG=1", std::chrono::seconds(5))) << sock.all();

  daemon.signal(SIGHUP);
  EXPECT_TRUE(sock.wait_for("RELOADING=1", std::chrono::seconds(5))) << sock.all();
  EXPECT_TRUE(sock.wait_for("READY=1", std::chrono::seconds(5))) << sock.all();

  daemon.signal(SIGTERM);
  EXPECT_TRUE(sock.wait_for("STOPPING=1", std::chrono::seconds(5))) << sock.all();
  const auto code = daemon.wait(std::chrono::seconds(10));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << daemon.log();
}

}  // namespace
}  // namespace relay::testing
