#pragma once

#include <optional>
#include <string>
#include <vector>

namespace relay::torture {

/// One request of one delivery as the receiver saw it.
struct SeenRequest {
  int answer = 0;                  // status the receiver sent; 0 = closed without an answer
  bool reused_connection = false;  // not the first request on its TCP connection
};

/// One row of the attempts table.
struct AttemptRow {
  int number = 0;
  std::optional<int> response_status;
  std::string error;
  std::string outcome;  // succeeded | retry | failed
};

struct EpochMatch {
  bool ok = false;
  int unrecorded = 0;       // 0 or 1: the request in flight when the process was killed
  int unrecorded_2xx = 0;   // ...and the receiver had accepted it: a duplicate after restart
  int stale_resends = 0;    // requests relayd sent again at once on a fresh connection
  std::string explanation;  // why it failed, for the assertion message
};

/// Matches what the receiver saw of one delivery during one life of relayd (an "epoch", from a
/// start to a kill or to the final clean stop) with the attempt rows that life committed.
///
/// Every row must be one request, in order, with the same answer (the status, or for a close
/// without an answer a NULL status and an error). Two kinds of requests may have no row:
/// - the last one, when the epoch ended with SIGKILL: at most one per delivery per kill (one
///   attempt in flight per delivery), and only while the delivery was not finished;
/// - a request on a reused keep-alive connection that the receiver closed without answering,
///   followed by one on a fresh connection: relayd cannot tell that from a pooled connection
///   the server closed while idle (SPEC §5), so it sends again at once within the same attempt.
/// `finished_before`: the delivery already had its final row (succeeded/failed) in an earlier
/// epoch, so nothing may be sent at all. Pure function; thread-safe.
EpochMatch match_epoch(const std::vector<SeenRequest>& seen, const std::vector<AttemptRow>& rows,
                       bool ended_by_kill, bool finished_before);

}  // namespace relay::torture
