#include "llmctl/log_follow.hpp"

#include "temp_dir.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

using namespace llmctl;

namespace {

// Appends `text` to the file at `path`.
void append(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::app | std::ios::binary) << text; }

// poll_log on `log`, returning what it handed to the sink.
std::string poll_text(FollowedLog& log) {
    std::string got;
    poll_log(log, 7, [&](const std::string& name, std::string_view data, std::size_t width) {
        EXPECT_EQ(name, log.name);
        EXPECT_EQ(width, 7u);
        got += data;
    });
    return got;
}

} // namespace

TEST(LogFollow, HandsOnWhatIsNewOnce) {
    test_support::TempDir dir;
    FollowedLog log("s", dir.path + "/s.log");
    EXPECT_EQ(poll_text(log), ""); // no log yet
    append(log.path, "one\n");
    EXPECT_EQ(poll_text(log), "one\n");
    EXPECT_EQ(poll_text(log), "");
    append(log.path, "two");
    EXPECT_EQ(poll_text(log), "two");
}

TEST(LogFollow, TruncatedLogIsReadFromItsStart) {
    test_support::TempDir dir;
    FollowedLog log("s", dir.path + "/s.log");
    append(log.path, "a long first line\n");
    EXPECT_EQ(poll_text(log), "a long first line\n");
    std::filesystem::resize_file(log.path, 0);
    append(log.path, "new\n");
    EXPECT_EQ(poll_text(log), "new\n");
}

TEST(LogFollow, WidestName) {
    std::vector<FollowedLog> logs{{"a", "/x"}, {"abcd", "/y"}};
    EXPECT_EQ(widest_name(logs), 4u);
    EXPECT_EQ(widest_name({}), 0u);
}
