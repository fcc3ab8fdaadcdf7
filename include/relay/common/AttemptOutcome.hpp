#pragma once

namespace relay::common {

/// What one delivery attempt means for its delivery (SPEC §5): delivered, try again later, or
/// give up. The one vocabulary shared by the retry policy, the dispatcher and the store
/// (attempts.outcome).
enum class AttemptOutcome { kSucceeded, kRetry, kFailed };

}  // namespace relay::common
