#pragma once
// Wall-clock times as text, in local time or UTC: the log's markers, the events, the access log,
// top's clock. strftime and its thread-safe calendars (localtime_r, gmtime_r) are called here only
// (but in llmctl-tls, which links none of the library).

#include <cstdint>
#include <ctime>
#include <string>

namespace llmctl {

enum class Zone { local, utc };

// The time in the lines llmctl writes into a server's log (its start, a monitor's note): local,
// with its offset, "2026-12-03 23:30:01 +0100".
inline constexpr const char* k_log_marker_time = "%Y-%m-%d %H:%M:%S %z";

// `t` in `zone`, formatted by strftime's `format` (its result under 64 characters).
std::string clock_text(std::time_t t, Zone zone, const char* format);

// ms since the epoch to the millisecond: "2026-12-03 23:30:01.123" (local), or
// "2026-12-03T23:30:01.123Z" (UTC, ISO 8601).
std::string clock_text_ms(std::int64_t ms, Zone zone);

} // namespace llmctl
