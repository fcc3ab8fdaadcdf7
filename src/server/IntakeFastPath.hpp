#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/server/Intake.hpp"

namespace relay::server::detail {

/// The common case of parse_intake, read with simdjson (SIMD lexing, no allocation per value):
/// a well-formed body whose events are all valid. Returns the events, byte for byte what the
/// reference reading (nlohmann's DOM, Intake.cpp) gives for the same body, or std::nullopt when
/// this path does not decide: any parse error, any invalid or unknown field, a duplicate key
/// anywhere, an integer beyond 64 bits, nesting deeper than kMaxJsonDepth. The caller then runs
/// the reference reading, so every refusal and every unusual body is answered exactly as
/// before; this path only has to be right about what it accepts (tests/fuzz/intake_fuzz.cpp
/// checks that).
[[nodiscard]] std::optional<std::vector<ValidatedEvent>> fast_parse_intake(std::string_view body,
                                                                           IntakeKind kind);

/// Appends `text` (valid UTF-8) as a JSON string literal, byte for byte what nlohmann's dump
/// writes: only '"', '\\' and control characters below 0x20 are escaped.
void append_escaped(std::string& out, std::string_view text);

}  // namespace relay::server::detail
