#pragma once

// A real PostgreSQL 15 server for tests (SPEC §14: the tests start their own): initdb into a
// temporary directory, pg_ctl on a free loopback port with its Unix socket in that directory,
// stopped (and the directory removed) by the destructor. As root (CI) the server runs as the
// `postgres` system user (initdb and postgres refuse root), with the directory chowned to it.
//
// One server serves a whole ctest run: the fixture tests `pg_server_start`/`pg_server_stop`
// (tests/CMakeLists.txt) run `pg_test_server start|stop DIR`, and every test that needs one
// reads its dsn from DIR (shared_pg()). Run directly (no ctest), a test binary starts a server
// of its own for the life of the process. Each test then takes a fresh database
// (fresh_database()), so tests never see each other's rows.
//
// Failing to start is an error with the reason (the server log's tail), never a skip.

#include <filesystem>
#include <string>

namespace relay::testing {

class PgServer {
 public:
  /// Starts a new server in a new temporary directory. Throws std::runtime_error.
  /// `fsync` off is only for the run's shared server: nothing kills that server, only the
  /// relayd processes using it (whose commits the OS keeps), and with fsync on, its hundreds
  /// of per-test databases made the machine's disk the bottleneck of the whole suite. Tests
  /// that stop or kill PostgreSQL itself start their own server, with fsync on.
  explicit PgServer(bool fsync = true);
  /// Stops it and removes the directory.
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  /// libpq conninfo of database `db` (the superuser `relayd`, no password: trust on loopback).
  [[nodiscard]] std::string dsn(const std::string& db = "postgres") const;
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

  /// pg_ctl stop -m fast / start -w: a server restart under a running relayd.
  void stop();
  void start();

 private:
  void run(const std::string& what, const std::string& command) const;
  std::filesystem::path dir_;
  int port_ = 0;
  bool running_ = false;
  bool immediate_stop_ = false;  // a throwaway server (fsync off): no shutdown checkpoint
};

/// The dsn of the run's shared server (started by the ctest fixture, else by this process).
std::string shared_pg_dsn(const std::string& db = "postgres");

/// A new empty database on the shared server; returns its dsn.
std::string fresh_database();

/// Runs `sql` on `dsn` and returns the rows as "a|b\nc|d" (NULL for SQL NULL), or
/// "error: …". For tests' direct looks at the tables.
std::string pg_query(const std::string& dsn, const std::string& sql);

/// Runs `sql`; throws std::runtime_error when it fails.
void pg_exec(const std::string& dsn, const std::string& sql);

/// RELAYD_TEST_BACKEND=postgres: the integration suite runs relayd on PostgreSQL (ctest
/// registers it a second time so, tests/integration/CMakeLists.txt).
bool postgres_backend();

/// The database that stands for the SQLite file `db_path` in this process: created (fresh,
/// empty) on the first call for that path, the same dsn after. Lets tests keep naming their
/// database by its file path on both backends.
std::string dsn_for(const std::filesystem::path& db_path);

/// Where the ctest fixture keeps the shared server (its `dsn` file and data directory).
std::filesystem::path shared_pg_dir();

}  // namespace relay::testing
