#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "TempDir.hpp"

namespace relay::testing {

using relay::test::TempDir;

/// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();

/// A listening socket on 127.0.0.1 with a kernel-chosen port (stored in `port`), for tests'
/// hand-made servers. Throws std::runtime_error naming `who` when it cannot listen.
int listen_on_loopback(int backlog, std::uint16_t& port, const char* who);

void write_file(const std::filesystem::path& path, const std::string& text);
std::string read_file(const std::filesystem::path& path);

/// Runs a command through /bin/sh and returns (exit code, stdout).
std::pair<int, std::string> run_command(const std::string& command);

/// The real relayd binary, started as a child process with a config file the test writes.
/// The child's stderr goes to `log_path()`.
class DaemonProcess {
 public:
  /// `config_yaml` is written to dir/relayd.yaml.
  DaemonProcess(std::filesystem::path dir, std::string config_yaml);
  ~DaemonProcess();  // SIGKILL if still running
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  /// Starts relayd serve and waits until GET /healthz answers 200 on `port` (throws on
  /// timeout or early exit, with the log's tail in the message).
  void start(std::uint16_t port, std::vector<std::pair<std::string, std::string>> env = {},
             std::chrono::milliseconds timeout = std::chrono::seconds(20));
  /// Starts without waiting (for start-up failure tests).
  void spawn(std::vector<std::pair<std::string, std::string>> env = {});
  void signal(int signo);
  void kill_hard();  // SIGKILL and reap
  /// Waits for exit; nullopt on timeout. Returns the exit code (128+signal when signalled).
  std::optional<int> wait(std::chrono::milliseconds timeout);
  [[nodiscard]] bool running();

  void rewrite_config(const std::string& config_yaml);
  [[nodiscard]] std::filesystem::path config_path() const { return dir_ / "relayd.yaml"; }
  [[nodiscard]] std::filesystem::path log_path() const { return dir_ / "relayd.log"; }
  [[nodiscard]] std::string log() const;
  /// Whether `text` shows up in the log within `timeout`. relayd writes a line after the
  /// commit it reports (a "delivered" line follows the row), so a test that saw the database
  /// or the API change first must wait for the line rather than read the log once.
  [[nodiscard]] bool logged(const std::string& text,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

/// Path of the relayd binary under test.
std::string relayd_binary();

}  // namespace relay::testing
