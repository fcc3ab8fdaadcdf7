#pragma once

// A thin RAII layer over libpq (the C API): one connection, text-format parameters and
// results. relayd stores times as RFC 3339 text on both backends, so nothing here converts
// types beyond integers.
//
// Why libpq and not libpqxx: relayd runs a handful of fixed statements through one writer
// connection and a few reader connections; libpq gives exactly that (PQexecParams,
// notifications, the socket for poll) with no extra package and no exceptions crossing our
// threads, and libpqxx's conveniences (transactors, streams) would go unused.

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace relay::store::pg {

/// A failed statement or connection. `sqlstate` is PostgreSQL's five-character code (empty
/// when the connection itself failed); `connection_lost` says the connection is unusable.
class PgError : public std::runtime_error {
 public:
  PgError(const std::string& what, std::string sqlstate, bool connection_lost)
      : std::runtime_error(what),
        sqlstate_(std::move(sqlstate)),
        connection_lost_(connection_lost) {}
  [[nodiscard]] const std::string& sqlstate() const { return sqlstate_; }
  [[nodiscard]] bool connection_lost() const { return connection_lost_; }
  /// The request itself broke a rule (unique key, check, foreign key, bad data): class 22/23.
  [[nodiscard]] bool is_rejection() const {
    return sqlstate_.starts_with("22") || sqlstate_.starts_with("23");
  }
  /// Two transactions collided (deadlock, serialization): running the group again may work.
  [[nodiscard]] bool is_transient() const {
    return sqlstate_ == "40P01" || sqlstate_ == "40001" || sqlstate_ == "55P03";
  }

 private:
  std::string sqlstate_;
  bool connection_lost_;
};

/// Statement parameters: text or SQL NULL.
class Params {
 public:
  Params& add(std::string v) {
    values_.emplace_back(std::move(v));
    return *this;
  }
  Params& add(std::int64_t v) { return add(std::to_string(v)); }
  Params& add(int v) { return add(std::to_string(v)); }
  Params& add(const std::optional<std::string>& v) {
    values_.push_back(v);
    return *this;
  }
  Params& add(const std::optional<int>& v) {
    values_.push_back(v ? std::optional<std::string>(std::to_string(*v)) : std::nullopt);
    return *this;
  }
  Params& null() {
    values_.emplace_back(std::nullopt);
    return *this;
  }
  [[nodiscard]] const std::vector<std::optional<std::string>>& values() const { return values_; }

 private:
  std::vector<std::optional<std::string>> values_;
};

/// One statement's result (rows in text format).
class Result {
 public:
  explicit Result(PGresult* r) : r_(r, &PQclear) {}
  [[nodiscard]] int rows() const { return PQntuples(r_.get()); }
  [[nodiscard]] bool is_null(int row, int col) const {
    return PQgetisnull(r_.get(), row, col) != 0;
  }
  [[nodiscard]] std::string text(int row, int col) const {
    return std::string(PQgetvalue(r_.get(), row, col),
                       static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
  }
  [[nodiscard]] std::optional<std::string> optional_text(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return text(row, col);
  }
  [[nodiscard]] std::int64_t int64(int row, int col) const;
  [[nodiscard]] std::optional<int> optional_int(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return static_cast<int>(int64(row, col));
  }
  /// Rows an INSERT/UPDATE/DELETE changed.
  [[nodiscard]] std::int64_t affected() const;

 private:
  std::unique_ptr<PGresult, decltype(&PQclear)> r_;
};

class Connection {
 public:
  /// Connects; throws PgError (its message never holds the password: libpq does not echo the
  /// conninfo, and we add only its redacted form).
  explicit Connection(const std::string& dsn);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Result exec(std::string_view sql, const Params& params = Params());
  /// Runs SQL text that may hold several statements (schema, BEGIN/COMMIT). No parameters.
  void exec_script(const std::string& sql);
  [[nodiscard]] bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }
  [[nodiscard]] bool in_transaction() const { return PQtransactionStatus(conn_) != PQTRANS_IDLE; }
  PGconn* get() { return conn_; }

 private:
  [[noreturn]] void fail(PGresult* r, std::string_view sql);
  PGconn* conn_ = nullptr;
};

}  // namespace relay::store::pg
