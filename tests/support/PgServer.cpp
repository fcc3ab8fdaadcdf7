#include "PgServer.hpp"

#include "Ports.hpp"

#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace relay::testing {

namespace fs = std::filesystem;

namespace {

std::string bin(const std::string& tool) {
  const char* dir = std::getenv("RELAYD_PG_BIN");
  return std::string(dir != nullptr ? dir : "/usr/lib/postgresql/15/bin") + "/" + tool;
}

int free_port() {
  return unused_loopback_port();
}

std::string tail(const fs::path& p, std::size_t max = 2000) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  auto s = ss.str();
  return s.size() > max ? s.substr(s.size() - max) : s;
}

// As root, commands run as the postgres system user (initdb and postgres refuse root).
std::string as_server_user(const std::string& command) {
  if (::geteuid() != 0) return command;
  return "runuser -u postgres -- " + command;
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

PgServer::PgServer(bool fsync) : immediate_stop_(!fsync) {
  char templ[] = "/tmp/relayd-pg-XXXXXX";
  if (::mkdtemp(templ) == nullptr) {
    throw std::runtime_error("PostgreSQL test server: cannot create a temporary directory");
  }
  dir_ = templ;
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) {
      throw std::runtime_error(
          "PostgreSQL test server: running as root, but there is no `postgres` user to run the "
          "server as (apt-get install postgresql-15 creates it)");
    }
    if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error("PostgreSQL test server: cannot chown " + dir_.string());
    }
  }
  port_ = free_port();
  run("initdb", as_server_user(bin("initdb") + " -D " + quote((dir_ / "data").string()) +
                               " -U relayd --auth=trust -E UTF8 --locale=C --no-sync") +
                    " > " + quote((dir_ / "initdb.log").string()) + " 2>&1");
  // fsync on (by default): tests that stop or kill the server expect committed rows to be
  // there.
  std::ofstream conf(dir_ / "data" / "postgresql.conf", std::ios::app);
  conf << "listen_addresses = '127.0.0.1'\nport = " << port_ << "\nunix_socket_directories = '"
       << dir_.string() << "'\nmax_connections = 200\nfsync = " << (fsync ? "on" : "off")
       << "\nshared_buffers = 32MB\n"
       << "log_min_messages = warning\n";
  conf.close();
  start();
}

PgServer::~PgServer() {
  try {
    stop();
  } catch (...) {
    // Still remove what we can.
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void PgServer::run(const std::string& what, const std::string& command) const {
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    throw std::runtime_error("PostgreSQL test server: " + what + " failed (" + command +
                             "): " + tail(dir_ / "initdb.log") + tail(dir_ / "server.log"));
  }
}

void PgServer::start() {
  if (running_) return;
  run("pg_ctl start",
      as_server_user(bin("pg_ctl") + " -D " + quote((dir_ / "data").string()) + " -l " +
                     quote((dir_ / "server.log").string()) + " -w -t 60 start") +
          " > /dev/null");
  running_ = true;
}

void PgServer::stop() {
  if (!running_) return;
  running_ = false;
  run("pg_ctl stop",
      as_server_user(bin("pg_ctl") + " -D " + quote((dir_ / "data").string()) +
                     (immediate_stop_ ? " -m immediate" : " -m fast") + " -w -t 60 stop") +
          " > /dev/null");
}

std::string PgServer::dsn(const std::string& db) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=relayd dbname=" + db +
         " connect_timeout=10";
}

fs::path shared_pg_dir() {
#ifdef RELAY_BINARY_DIR
  return fs::path(RELAY_BINARY_DIR) / "pg-test-server";
#else
  return fs::temp_directory_path() / "relayd-pg-test-server";
#endif
}

std::string shared_pg_dsn(const std::string& db) {
  static std::mutex m;
  static std::unique_ptr<PgServer> own;
  static std::string base;
  std::lock_guard lock(m);
  if (base.empty()) {
    std::ifstream in(shared_pg_dir() / "dsn");
    std::getline(in, base);
    if (!base.empty()) {
      // A stale file from a run that died: only use it when the server answers.
      PGconn* c = PQconnectdb((base + " dbname=postgres").c_str());
      const bool ok = PQstatus(c) == CONNECTION_OK;
      PQfinish(c);
      if (!ok) base.clear();
    }
    if (base.empty()) {
      own = std::make_unique<PgServer>(/*fsync=*/false);
      base =
          "host=127.0.0.1 port=" + std::to_string(own->port()) + " user=relayd connect_timeout=10";
      // Stopped at exit (static destructor).
    }
  }
  return base + " dbname=" + db;
}

namespace {

// The databases this process created, dropped when it exits (each test is a process of its
// own under ctest): hundreds of them would otherwise fill the shared server's directory.
struct CreatedDatabases {
  std::mutex m;
  std::vector<std::string> names;
  ~CreatedDatabases() {
    for (const auto& name : names) {
      (void)pg_query(shared_pg_dsn(), "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    }
  }
};

CreatedDatabases& created_databases() {
  static CreatedDatabases created;
  return created;
}

}  // namespace

std::string fresh_database() {
  static std::atomic<int> n{0};
  const auto name = "t_" + std::to_string(::getpid()) + "_" + std::to_string(n++);
  // The shared server's statics first: they are then destroyed after created_databases()'s.
  (void)shared_pg_dsn();
  {
    auto& created = created_databases();
    std::lock_guard lock(created.m);
    created.names.push_back(name);
  }
  pg_exec(shared_pg_dsn(), "DROP DATABASE IF EXISTS " + name);
  pg_exec(shared_pg_dsn(), "CREATE DATABASE " + name);
  return shared_pg_dsn(name);
}

bool postgres_backend() {
  const char* v = std::getenv("RELAYD_TEST_BACKEND");
  return v != nullptr && std::string(v) == "postgres";
}

std::string dsn_for(const fs::path& db_path) {
  static std::mutex m;
  static std::map<std::string, std::string> dsns;
  std::lock_guard lock(m);
  auto& dsn = dsns[db_path.string()];
  if (dsn.empty()) dsn = fresh_database();
  return dsn;
}

std::string pg_query(const std::string& dsn, const std::string& sql) {
  PGconn* c = PQconnectdb(dsn.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string e = std::string("error: ") + PQerrorMessage(c);
    PQfinish(c);
    return e;
  }
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);  // "…does not exist, skipping"
  PGresult* r = PQexec(c, sql.c_str());
  std::string out;
  if (PQresultStatus(r) == PGRES_TUPLES_OK) {
    for (int i = 0; i < PQntuples(r); ++i) {
      if (i) out += "\n";
      for (int j = 0; j < PQnfields(r); ++j) {
        if (j) out += "|";
        out += PQgetisnull(r, i, j) ? "NULL" : PQgetvalue(r, i, j);
      }
    }
  } else if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    out = std::string("error: ") + PQresultErrorMessage(r);
  }
  PQclear(r);
  PQfinish(c);
  return out;
}

void pg_exec(const std::string& dsn, const std::string& sql) {
  const auto r = pg_query(dsn, sql);
  if (r.starts_with("error: ")) throw std::runtime_error(sql + ": " + r);
}

}  // namespace relay::testing
