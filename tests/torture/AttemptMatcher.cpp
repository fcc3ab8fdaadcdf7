#include "AttemptMatcher.hpp"

#include <sstream>

namespace relay::torture {
namespace {

bool is_final(const AttemptRow& row) {
  return row.outcome == "succeeded" || row.outcome == "failed";
}

bool same_answer(const SeenRequest& seen, const AttemptRow& row) {
  if (seen.answer == 0) return !row.response_status && !row.error.empty();
  return row.response_status && *row.response_status == seen.answer;
}

struct Search {
  const std::vector<SeenRequest>& seen;
  const std::vector<AttemptRow>& rows;
  bool ended_by_kill;
  bool finished_before;

  // Depth-first over the few ways to explain request i with rows j..: the lists are a handful
  // of entries long, so no memo is needed.
  bool run(std::size_t i, std::size_t j, EpochMatch& out) const {
    const bool finished = finished_before || (j > 0 && is_final(rows[j - 1]));
    if (i == seen.size()) return j == rows.size();
    if (!finished && j < rows.size() && same_answer(seen[i], rows[j]) && run(i + 1, j + 1, out)) {
      return true;
    }
    if (!finished && seen[i].answer == 0 && seen[i].reused_connection && i + 1 < seen.size() &&
        !seen[i + 1].reused_connection && run(i + 1, j, out)) {
      ++out.stale_resends;
      return true;
    }
    if (!finished && ended_by_kill && i + 1 == seen.size() && j == rows.size()) {
      out.unrecorded = 1;
      out.unrecorded_2xx = seen[i].answer >= 200 && seen[i].answer <= 299 ? 1 : 0;
      return true;
    }
    return false;
  }
};

std::string describe(const std::vector<SeenRequest>& seen, const std::vector<AttemptRow>& rows,
                     bool ended_by_kill, bool finished_before) {
  std::ostringstream s;
  s << "receiver saw [";
  for (const auto& r : seen) {
    s << ' ' << (r.answer == 0 ? std::string("closed") : std::to_string(r.answer))
      << (r.reused_connection ? "(reused)" : "(fresh)");
  }
  s << " ], attempt rows [";
  for (const auto& r : rows) {
    s << " #" << r.number << ':' << r.outcome << '/'
      << (r.response_status ? std::to_string(*r.response_status) : "NULL");
    if (!r.error.empty()) s << "/\"" << r.error << '"';
  }
  s << " ], " << (ended_by_kill ? "ended by SIGKILL" : "ended cleanly")
    << (finished_before ? ", finished in an earlier epoch" : "");
  return s.str();
}

}  // namespace

EpochMatch match_epoch(const std::vector<SeenRequest>& seen, const std::vector<AttemptRow>& rows,
                       bool ended_by_kill, bool finished_before) {
  EpochMatch out;
  out.ok = Search{seen, rows, ended_by_kill, finished_before}.run(0, 0, out);
  if (!out.ok) {
    out = EpochMatch{};
    out.explanation = describe(seen, rows, ended_by_kill, finished_before);
  }
  return out;
}

}  // namespace relay::torture
