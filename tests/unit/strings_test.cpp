#include "llmctl/strings.hpp"

#include <gtest/gtest.h>

using namespace llmctl;

TEST(Strings, EditDistanceCountsASwapOfNeighboursAsOne) {
    EXPECT_EQ(edit_distance("", ""), 0u);
    EXPECT_EQ(edit_distance("port", "port"), 0u);
    EXPECT_EQ(edit_distance("", "abc"), 3u);
    EXPECT_EQ(edit_distance("prot", "port"), 1u); // a swap: optimal string alignment, not Levenshtein (2)
    EXPECT_EQ(edit_distance("comand", "command"), 1u);
    EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
    EXPECT_EQ(edit_distance("ca", "abc"), 3u); // OSA edits no substring twice (full Damerau would say 2)
}

TEST(Strings, ClosestMatchOnlyWhenItStillLooksLikeATypo) {
    std::vector<std::string> keys = {"port", "port_range", "host", "command"};
    EXPECT_EQ(closest_match("prot", keys), "port");
    EXPECT_EQ(closest_match("comand", keys), "command");
    EXPECT_EQ(closest_match("hots", keys), "host");
    EXPECT_FALSE(closest_match("zzzz", keys));
    EXPECT_FALSE(closest_match("x", keys));
    EXPECT_EQ(did_you_mean_suffix("prot", keys), " (did you mean \"port\"?)");
    EXPECT_EQ(did_you_mean_suffix("zzzz", keys), "");
}

TEST(Strings, ReplaceAll) {
    EXPECT_EQ(replace_all("{port} and {port}", "{port}", "8080"), "8080 and 8080");
    EXPECT_EQ(replace_all("aaa", "a", "aa"), "aaaaaa"); // replacements are not searched again
    EXPECT_EQ(replace_all("none", "x", "y"), "none");
}

TEST(Strings, LastLines) {
    EXPECT_EQ(last_lines("a\nb\nc\n", 2), "b\nc\n");
    EXPECT_EQ(last_lines("a\nb\nc", 2), "b\nc"); // a last line without newline counts
    EXPECT_EQ(last_lines("a\nb\n", 5), "a\nb\n");
    EXPECT_EQ(last_lines("", 3), "");
}
