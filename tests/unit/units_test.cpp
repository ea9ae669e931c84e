#include "llmctl/units.hpp"
#include "llmctl/clock_text.hpp"

#include <cstdlib>
#include <optional>
#include <string>

#include <gtest/gtest.h>

using namespace llmctl;

TEST(Units, Durations) {
    EXPECT_EQ(parse_duration("0"), Millis(0));
    EXPECT_EQ(parse_duration("90s"), Millis(90'000));
    EXPECT_EQ(parse_duration("2m"), Millis(120'000));
    EXPECT_EQ(parse_duration("1h30m"), Millis(5'400'000));
    EXPECT_EQ(parse_duration("500ms"), Millis(500));
    EXPECT_EQ(parse_duration("1.5s"), Millis(1500));
    EXPECT_EQ(parse_duration("5"), Millis(5000));
    EXPECT_EQ(parse_duration("1D"), Millis(86'400'000));
    for (const char* bad : {"", "s", "-1s", "1x", "1 s", "1s2", "abc", "1.s.", "99999999999999999999h"})
        EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
}

TEST(Units, Sizes) {
    EXPECT_EQ(parse_size("64MiB"), 64ull << 20);
    EXPECT_EQ(parse_size("1KiB"), 1024u);
    EXPECT_EQ(parse_size("1.5gib"), 3ull << 29);
    EXPECT_EQ(parse_size("10MB"), 10'000'000u); // SI units mean what they say (the config once read MB as MiB)
    EXPECT_EQ(parse_size("10kB"), 10'000u);
    EXPECT_EQ(parse_size("1GB"), 1'000'000'000u);
    EXPECT_EQ(parse_size("2TB"), 2'000'000'000'000u);
    EXPECT_EQ(parse_size("512"), 512u);
    EXPECT_EQ(parse_size("512B"), 512u);
    for (const char* bad : {"", "MiB", "-1", "1X", "1 MiB", "1PiB", "64M", "10k", "1G", "1iB", "1bb"})
        EXPECT_FALSE(parse_size(bad).has_value()) << bad;
    EXPECT_TRUE(size_unit_is_ambiguous("64M"));
    EXPECT_TRUE(size_unit_is_ambiguous("10k"));
    EXPECT_FALSE(size_unit_is_ambiguous("64MB"));
    EXPECT_FALSE(size_unit_is_ambiguous("64"));
}

TEST(Units, Format) {
    EXPECT_EQ(format_duration(Millis(0)), "0");
    EXPECT_EQ(format_duration(Millis(5'400'000)), "1h30m");
    EXPECT_EQ(format_duration(Millis(250)), "250ms");
    EXPECT_EQ(format_duration(Millis(1500)), "1.5s");
    // Exact (found by fuzz_units: "1ms30m" printed as "30m").
    EXPECT_EQ(format_duration(Millis(1'800'001)), "30m1ms");
    EXPECT_EQ(format_duration(Millis(1'234)), "1s234ms");
    for (std::int64_t ms : {1, 999, 1000, 1001, 59'999, 60'001, 3'600'000, 90'061'001})
        EXPECT_EQ(parse_duration(format_duration(Millis(ms))), Millis(ms)) << ms;
    EXPECT_EQ(format_size(64ull << 20), "64MiB");
    EXPECT_EQ(format_size(100), "100B");
}

TEST(ClockText, UtcAndLocal) {
    EXPECT_EQ(clock_text_ms(0, Zone::utc), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(clock_text_ms(1'764'806'401'023, Zone::utc), "2025-12-04T00:00:01.023Z");
    EXPECT_EQ(clock_text(86'399, Zone::utc, "%H:%M:%S"), "23:59:59");
    // Local time: the same instant, in the zone's calendar (TZ=UTC0 here; the process's TZ back after).
    const char* was = std::getenv("TZ");
    const std::optional<std::string> saved = was ? std::optional<std::string>(was) : std::nullopt;
    ::setenv("TZ", "UTC0", 1);
    ::tzset();
    EXPECT_EQ(clock_text_ms(1'764'806'401'023, Zone::local), "2025-12-04 00:00:01.023");
    EXPECT_EQ(clock_text(0, Zone::local, k_log_marker_time), "1970-01-01 00:00:00 +0000");
    if (saved)
        ::setenv("TZ", saved->c_str(), 1);
    else
        ::unsetenv("TZ");
    ::tzset();
}
