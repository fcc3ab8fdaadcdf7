// The daemon skeleton as a user meets it: command line, check-config, start-up, schema, stop.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "DaemonProcess.hpp"
#include "HttpTestClient.hpp"
#include "TestConfig.hpp"

namespace relay::testing {
namespace {

std::string cli(const std::string& args) {
  return relayd_binary() + " " + args + " 2>&1";
}

TEST(Cli, VersionHelpAndUsageErrors) {
  auto [code, out] = run_command(cli("--version"));
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out.rfind("relayd ", 0), 0U) << out;

  std::tie(code, out) = run_command(cli("--help"));
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("check-config"), std::string::npos);

  std::tie(code, out) = run_command(cli("frobnicate"));
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("unknown command 'frobnicate'"), std::string::npos) << out;

  std::tie(code, out) = run_command(cli("serve --bogus"));
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("unknown option '--bogus'"), std::string::npos) << out;

  std::tie(code, out) = run_command(cli("send-test crm"));
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--event"), std::string::npos) << out;
}

TEST(Cli, CheckConfigAcceptsTheExample) {
  const auto [code, out] = run_command(
      cli(std::string("check-config ") + RELAY_SOURCE_DIR + "/config/relayd.example.yaml"));
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("crm"), std::string::npos) << out;
  // The example's secret default must never be printed.
  EXPECT_EQ(out.find("change-me-example-secret"), std::string::npos) << out;
}

TEST(Cli, CheckConfigReportsLineAndColumn) {
  TempDir dir;
  const auto path = dir.path() / "bad.yaml";
  write_file(path, "server:\n  listen: 127.0.0.1:8686\n  lisen: 1\n");
  const auto [code, out] = run_command(cli("check-config --config " + path.string()));
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find(path.string() + ":3:3: "), std::string::npos) << out;
}

TEST(Daemon, StartsServesHealthCreatesSchemaAndStopsOnSigterm) {
  TempDir dir;
  TestConfig cfg;
  cfg.port = free_port();
  cfg.db = dir.path() / "relayd.db";
  DaemonProcess daemon(dir.path(), cfg.yaml());
  daemon.start(cfg.port);

  HttpTestClient client("127.0.0.1", cfg.port);
  const auto health = client.request("GET", "/healthz");
  EXPECT_EQ(health.status, 200);

  // The operator's view: the sqlite3 CLI reads the schema while the daemon runs.
  const auto [code, schema] = run_command("sqlite3 " + cfg.db.string() + " .schema");
  EXPECT_EQ(code, 0);
  for (const char* name : {"CREATE TABLE events", "CREATE TABLE deliveries",
                           "CREATE TABLE attempts", "CREATE VIEW delivery_log"}) {
    EXPECT_NE(schema.find(name), std::string::npos) << name << " missing in:\n" << schema;
  }
  const auto [code2, mode] = run_command("sqlite3 " + cfg.db.string() + " 'PRAGMA journal_mode'");
  EXPECT_EQ(code2, 0);
  EXPECT_EQ(mode, "wal\n");

  daemon.signal(SIGTERM);
  const auto exit_code = daemon.wait(std::chrono::seconds(10));
  ASSERT_TRUE(exit_code.has_value()) << daemon.log();
  EXPECT_EQ(*exit_code, 0) << daemon.log();
}

// GLIBC_TUNABLES of a running process, from its environment (nullopt: not set).
std::optional<std::string> tunables_of(pid_t pid) {
  const auto environ = read_file("/proc/" + std::to_string(pid) + "/environ");
  std::size_t at = 0;
  while (at < environ.size()) {
    const auto end = std::min(environ.find('\0', at), environ.size());
    const auto entry = environ.substr(at, end - at);
    if (entry.rfind("GLIBC_TUNABLES=", 0) == 0) return entry.substr(15);
    at = end + 1;
  }
  return std::nullopt;
}

// `serve` runs with glibc's per-thread cache of freed blocks enlarged (src/main.cpp): glibc
// reads GLIBC_TUNABLES at exec only, so relayd sets it and executes itself once, keeping its
// process id (what systemd and this test know it by). An operator's own choice is kept as given.
// (/proc/PID/environ shows the variable up to its first ':' only, glibc having parsed it in
// place: hence the single-tunable cases.)
TEST(Daemon, ServeRunsWithALargerMallocCacheUnlessTheOperatorChoseOne) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  constexpr bool kGlibcMalloc = false;  // the sanitizer's allocator: relayd leaves glibc alone
#else
  constexpr bool kGlibcMalloc = true;
#endif
  ASSERT_EQ(std::getenv("GLIBC_TUNABLES"), nullptr) << "run the tests without GLIBC_TUNABLES";
  TempDir dir;
  TestConfig cfg;
  cfg.port = free_port();
  cfg.db = dir.path() / "relayd.db";
  {
    DaemonProcess daemon(dir.path(), cfg.yaml());
    daemon.start(cfg.port);
    const auto tunables = tunables_of(daemon.pid());
    if (kGlibcMalloc) {
      EXPECT_EQ(tunables, "glibc.malloc.tcache_count=256");
    } else {
      EXPECT_EQ(tunables, std::nullopt);
    }
  }  // (start() waited for /healthz: the executed image serves)
  DaemonProcess daemon(dir.path(), cfg.yaml());
  daemon.start(cfg.port, {{"GLIBC_TUNABLES", "glibc.malloc.tcache_count=3"}});
  EXPECT_EQ(tunables_of(daemon.pid()), "glibc.malloc.tcache_count=3");
}

TEST(Daemon, RefusesAForeignFileAndLeavesItUntouched) {
  TempDir dir;
  TestConfig cfg;
  cfg.port = free_port();
  cfg.db = dir.path() / "notes.txt";
  const std::string original = "these are my notes, not a database\n";
  write_file(cfg.db, original);
  DaemonProcess daemon(dir.path(), cfg.yaml());
  daemon.spawn();
  const auto exit_code = daemon.wait(std::chrono::seconds(10));
  ASSERT_TRUE(exit_code.has_value());
  EXPECT_EQ(*exit_code, 1);
  EXPECT_NE(daemon.log().find(cfg.db.string()), std::string::npos) << daemon.log();
  EXPECT_EQ(read_file(cfg.db), original);
}

// Two tests that picked one port: the second must not take the first one's relayd for its own
// (it would post to, and count in, the other test's database).
TEST(Daemon, StartingOnATakenPortFailsInsteadOfUsingTheOtherDaemon) {
  TempDir first_dir;
  TempDir second_dir;
  TestConfig first;
  first.port = free_port();
  first.db = first_dir.path() / "relayd.db";
  TestConfig second = first;
  second.db = second_dir.path() / "relayd.db";
  DaemonProcess running(first_dir.path(), first.yaml());
  running.start(first.port);
  DaemonProcess late(second_dir.path(), second.yaml());
  try {
    late.start(second.port, {}, std::chrono::seconds(10));
    FAIL() << "start() returned for a relayd that cannot listen:\n" << late.log();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("another process answers"), std::string::npos) << e.what();
  }
}

TEST(Daemon, InvalidConfigExitsOneWithPosition) {
  TempDir dir;
  DaemonProcess daemon(dir.path(), "server:\n  listen: nowhere\n");
  daemon.spawn();
  const auto exit_code = daemon.wait(std::chrono::seconds(10));
  ASSERT_TRUE(exit_code.has_value());
  EXPECT_EQ(*exit_code, 1);
  EXPECT_NE(daemon.log().find(daemon.config_path().string() + ":2:"), std::string::npos)
      << daemon.log();
}

}  // namespace
}  // namespace relay::testing
