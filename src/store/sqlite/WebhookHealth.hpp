#pragma once

// webhook_state's failure streak and last success (SPEC §10), written once per webhook per
// group commit instead of once per attempt record. The records of one group fold their
// outcomes here, in the order they are applied, and the writer upserts the folded rows just
// before the group's COMMIT (WriterQueue.cpp): the row still commits together with the
// attempts it describes, and ends as the per-attempt upserts would have left it. A drain of
// one webhook has ~30 records per group; each upsert was a primary-key seek and a row
// rewrite on the writer thread.

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace relay::store::sqlite {

class Connection;

/// One webhook's attempts of the group, folded: its last success, and the failures after it.
struct HealthFold {
  std::optional<std::string> last_success_at;   // set: the streak restarts at this success
  std::optional<std::string> first_failure_at;  // the first failure after it (or in the group)
  std::int64_t failures = 0;                    // failures after it (or in the group)

  void success(std::string at) {
    last_success_at = std::move(at);
    first_failure_at.reset();
    failures = 0;
  }
  void failure(std::string at) {
    if (!first_failure_at) first_failure_at = std::move(at);
    ++failures;
  }
};

/// By webhook id. Writer thread only; emptied at the start of every group run, so a rollback
/// (or a run with savepoints after a rejection) never writes a fold twice.
using HealthFolds = std::unordered_map<std::string, HealthFold>;

/// Upserts every folded row. Throws SqliteError.
void write_health_folds(Connection& c, const HealthFolds& folds);

}  // namespace relay::store::sqlite
