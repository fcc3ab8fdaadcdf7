// `pg_test_server start|stop`: the ctest fixture that gives a whole test run one PostgreSQL
// server (tests/CMakeLists.txt). `start` starts one (PgServer) and leaves it running: it
// writes the server's dsn (without dbname) and its directory to shared_pg_dir(). `stop`
// stops that server and removes its directory (also a server a killed run left behind).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "PgServer.hpp"

namespace fs = std::filesystem;
using relay::testing::shared_pg_dir;

namespace {

// The server must outlive this process (`stop` stops it), so it is never destroyed; a global
// keeps it reachable, which is what LeakSanitizer asks of memory kept on purpose.
relay::testing::PgServer* g_server = nullptr;

int stop(const fs::path& dir) {
  std::string server_dir;
  std::getline(std::ifstream(dir / "server_dir"), server_dir);
  fs::remove(dir / "dsn");
  fs::remove(dir / "server_dir");
  if (server_dir.empty()) return 0;
  const char* bindir = std::getenv("RELAYD_PG_BIN");
  std::string command = std::string(bindir != nullptr ? bindir : "/usr/lib/postgresql/15/bin") +
                        "/pg_ctl -D '" + server_dir +
                        "/data' -m immediate -w -t 60 stop > /dev/null 2>&1";  // throwaway data
  if (::geteuid() == 0) command = "runuser -u postgres -- " + command;
  const int rc = std::system(command.c_str());
  std::error_code ec;
  fs::remove_all(server_dir, ec);
  return rc == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  const auto dir = shared_pg_dir();
  if (cmd == "start") {
    (void)stop(dir);  // whatever an interrupted run left
    try {
      fs::create_directories(dir);
      g_server = new relay::testing::PgServer(/*fsync=*/false);
      const auto* server = g_server;
      std::ofstream(dir / "dsn") << "host=127.0.0.1 port=" << server->port()
                                 << " user=relayd connect_timeout=10\n";
      std::ofstream(dir / "server_dir") << server->dir().string() << '\n';
      std::cout << "PostgreSQL test server on port " << server->port() << " in "
                << server->dir().string() << '\n';
      return 0;
    } catch (const std::exception& e) {
      std::cerr << e.what() << '\n';
      return 1;
    }
  }
  if (cmd == "stop") return stop(dir);
  std::cerr << "usage: pg_test_server start|stop\n";
  return 2;
}
