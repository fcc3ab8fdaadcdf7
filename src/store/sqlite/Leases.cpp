#include "Leases.hpp"

namespace relay::store::sqlite {

namespace {

void leased(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
  const auto* leases = static_cast<const Leases*>(sqlite3_user_data(ctx));
  sqlite3_result_int(ctx, leases->holds(sqlite3_value_int64(argv[0])) ? 1 : 0);
}

// The writer connection's: the writer thread is the only one that changes the map.
void leased_on_writer(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
  const auto* leases = static_cast<const Leases*>(sqlite3_user_data(ctx));
  sqlite3_result_int(ctx, leases->held_by_writer(sqlite3_value_int64(argv[0])) ? 1 : 0);
}

}  // namespace

void Leases::install(Connection& c, bool writer) const {
  // Not deterministic: the answer changes as leases come and go, so SQLite must not cache it.
  const int rc = sqlite3_create_function_v2(
      c.get(), "relay_leased", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, const_cast<Leases*>(this),
      writer ? leased_on_writer : leased, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) throw SqliteError(rc, "cannot register relay_leased");
}

}  // namespace relay::store::sqlite
