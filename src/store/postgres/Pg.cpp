#include "Pg.hpp"

#include <charconv>

#include "relay/common/Redaction.hpp"

namespace relay::store::pg {

std::int64_t Result::int64(int row, int col) const {
  const char* v = PQgetvalue(r_.get(), row, col);
  const auto len = static_cast<std::size_t>(PQgetlength(r_.get(), row, col));
  std::int64_t out = 0;
  std::from_chars(v, v + len, out);
  return out;
}

std::int64_t Result::affected() const {
  const char* n = PQcmdTuples(r_.get());
  std::int64_t out = 0;
  if (n != nullptr) std::from_chars(n, n + std::char_traits<char>::length(n), out);
  return out;
}

Connection::Connection(const std::string& dsn) {
  conn_ = PQconnectdb(dsn.c_str());
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string msg = conn_ != nullptr ? PQerrorMessage(conn_) : "out of memory";
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    PQfinish(conn_);
    conn_ = nullptr;
    throw PgError("cannot connect to PostgreSQL (" + common::redact_dsn(dsn) + "): " + msg, "",
                  true);
  }
  // Server notices (e.g. "relation already exists, skipping") are not errors: keep them out
  // of stderr.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
}

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Result Connection::exec(std::string_view sql, const Params& params) {
  const auto& values = params.values();
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& v : values) ptrs.push_back(v ? v->c_str() : nullptr);
  const std::string text(sql);
  PGresult* r = PQexecParams(conn_, text.c_str(), static_cast<int>(ptrs.size()), nullptr,
                             ptrs.data(), nullptr, nullptr, 0);
  const auto st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail(r, sql);
  return Result(r);
}

void Connection::exec_script(const std::string& sql) {
  PGresult* r = PQexec(conn_, sql.c_str());
  const auto st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail(r, sql);
  PQclear(r);
}

void Connection::fail(PGresult* r, std::string_view sql) {
  std::string state;
  std::string msg;
  if (r != nullptr) {
    if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) state = s;
    msg = PQresultErrorMessage(r);
  }
  if (msg.empty()) msg = PQerrorMessage(conn_);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (r != nullptr) PQclear(r);
  const bool lost = PQstatus(conn_) != CONNECTION_OK || state.starts_with("08") ||
                    state == "57P01" || state == "57P02" || state == "57P03";
  // The statement's first words say which one failed without logging its data.
  const auto head = sql.substr(0, std::min<std::size_t>(sql.size(), 60));
  throw PgError(msg + " (in: " + std::string(head) + (sql.size() > 60 ? "…" : "") + ")", state,
                lost);
}

}  // namespace relay::store::pg
