#include "DaemonProcess.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "HttpTestClient.hpp"
#include "Ports.hpp"
#include "Waiting.hpp"

namespace relay::testing {

namespace fs = std::filesystem;

std::uint16_t free_port() {
  return unused_loopback_port();
}

int listen_on_loopback(int backlog, std::uint16_t& port, const char* who) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(fd, backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error(std::string(who) + ": cannot listen");
  }
  port = ntohs(addr.sin_port);
  return fd;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::pair<int, std::string> run_command(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed");
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) output.append(buf.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), output};
}

std::string relayd_binary() {
  return std::string(RELAY_BINARY_DIR) + "/relayd";
}

DaemonProcess::DaemonProcess(fs::path dir, std::string config_yaml) : dir_(std::move(dir)) {
  rewrite_config(config_yaml);
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) kill_hard();
}

void DaemonProcess::rewrite_config(const std::string& config_yaml) {
  write_file(config_path(), config_yaml);
}

std::string DaemonProcess::log() const {
  return read_file(log_path());
}

bool DaemonProcess::logged(const std::string& text, std::chrono::milliseconds timeout) const {
  return wait_until([&] { return log().find(text) != std::string::npos; }, timeout);
}

void DaemonProcess::spawn(std::vector<std::pair<std::string, std::string>> env) {
  if (pid_ > 0) throw std::runtime_error("already running");
  const auto binary = relayd_binary();
  const auto config = config_path().string();
  const auto log_file = log_path().string();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDERR_FILENO);
      ::dup2(fd, STDOUT_FILENO);
    }
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    ::execl(binary.c_str(), binary.c_str(), "serve", "--config", config.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  pid_ = pid;
}

namespace {

bool answers_health(std::uint16_t port) {
  try {
    HttpTestClient client("127.0.0.1", port);
    return client.request("GET", "/healthz").status == 200;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

void DaemonProcess::start(std::uint16_t port, std::vector<std::pair<std::string, std::string>> env,
                          std::chrono::milliseconds timeout) {
  spawn(std::move(env));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool someone_else = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) {
      someone_else = someone_else || answers_health(port);
      throw std::runtime_error(
          "relayd exited during start-up" +
          std::string(someone_else ? " (another process answers on its port)" : "") + ":\n" +
          log());
    }
    // Only our own relayd counts: a 200 from another test's server on the same port would have
    // this test post to, and count in, someone else's database.
    if (answers_health(port)) {
      if (listens_on(pid_, port)) return;
      someone_else = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error(
      someone_else ? "relayd did not become healthy in time; another process answers on port " +
                         std::to_string(port) + ":\n" + log()
                   : "relayd did not become healthy in time:\n" + log());
}

void DaemonProcess::signal(int signo) {
  if (pid_ > 0) ::kill(pid_, signo);
}

void DaemonProcess::kill_hard() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::optional<int> DaemonProcess::wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool DaemonProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

}  // namespace relay::testing
