#pragma once

// CLAIMS HELD IN MEMORY (issue #20). A claimed delivery is not written as `delivering`: its
// row stays `pending` with its due time, and this process holds a lease on it. What that
// costs and what it keeps:
//   - no row update (and no index entry moved) per claim; one map insert instead;
//   - never attempted twice at once: claims, pauses and redeliver skip leased rows (SQL
//     function relay_leased(rowid), installed on every connection of the store);
//   - after a crash the leases are gone and the rows are simply due: everything unrecorded
//     is sent again (at-least-once), without a recovery step;
//   - reads (API, /metrics) show a leased pending row as `delivering`.
// The writer thread adds and removes leases (claims, records, releases); readers only ask.
// So the writer's own questions take no lock (held_by_writer): nothing else changes the map,
// and the writer changes it under the lock for the readers' sake. A claim asks once per index
// entry it steps over (up to 2 × per_webhook_concurrency in-flight rows per claim): the lock
// was ~2.6% of a drain's CPU.
// Keyed by rowid, which every index carries (the claim's filter runs on the index entry);
// the id is kept to check that a rowid still names the claimed row.

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "Sqlite.hpp"

namespace relay::store::sqlite {

class Leases {
 public:
  void add(std::int64_t rowid, const std::string& id) {
    std::lock_guard lock(mutex_);
    held_.insert_or_assign(rowid, id);
  }
  void remove(std::int64_t rowid) {
    std::lock_guard lock(mutex_);
    held_.erase(rowid);
  }
  /// Removes the lease when it is `id`'s (a rowid of a deleted row can be reused).
  void remove(std::int64_t rowid, const std::string& id) {
    std::lock_guard lock(mutex_);
    if (auto it = held_.find(rowid); it != held_.end() && it->second == id) held_.erase(it);
  }
  [[nodiscard]] bool holds(std::int64_t rowid) const {
    std::lock_guard lock(mutex_);
    return held_.contains(rowid);
  }
  [[nodiscard]] bool holds(std::int64_t rowid, const std::string& id) const {
    std::lock_guard lock(mutex_);
    const auto it = held_.find(rowid);
    return it != held_.end() && it->second == id;
  }
  /// holds() without the lock: for the writer thread only (see the note above).
  [[nodiscard]] bool held_by_writer(std::int64_t rowid) const { return held_.contains(rowid); }
  [[nodiscard]] bool held_by_writer(std::int64_t rowid, const std::string& id) const {
    const auto it = held_.find(rowid);
    return it != held_.end() && it->second == id;
  }
  [[nodiscard]] std::vector<std::int64_t> rowids() const {
    std::lock_guard lock(mutex_);
    std::vector<std::int64_t> out;
    out.reserve(held_.size());
    for (const auto& [rowid, id] : held_) out.push_back(rowid);
    return out;
  }
  /// Registers relay_leased(rowid) (1 when leased, else 0) on `c`; this object must outlive it.
  /// `writer`: `c` is the writer thread's connection, whose calls need no lock.
  void install(Connection& c, bool writer) const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::int64_t, std::string> held_;  // guarded by mutex_
};

}  // namespace relay::store::sqlite
