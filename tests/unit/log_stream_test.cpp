#include "llmctl/log_stream.hpp"
#include "llmctl/logfile.hpp"
#include "llmctl/strings.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

using namespace llmctl;
namespace fs = std::filesystem;

namespace {

// A temp dir with a log "s.log" that the test fills and rotates.
class LogStreamTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "llmctl-logstream-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        log_ = dir_ + "/s.log";
    }
    void TearDown() override { fs::remove_all(dir_); }

    void append(const std::string& text) { std::ofstream(log_, std::ios::app | std::ios::binary) << text; }
    // Every byte the stream still holds, oldest first.
    std::string whole_stream() {
        LogStream s(log_, removed_bytes(log_));
        std::uint64_t pos = 0;
        return s.read_to_end(pos);
    }

    std::string dir_, log_;
};

// Lines "line N ...\n" of 37 bytes each: a 4 KiB block boundary falls inside a line.
std::string lines(int from, int to) {
    std::string s;
    for (int i = from; i < to; ++i) s += "line " + std::to_string(100000 + i) + " of the server log....\n";
    return s;
}

} // namespace

TEST_F(LogStreamTest, ReadsAcrossOldFilesAsOneStream) {
    append(lines(0, 1000));
    ASSERT_TRUE(rotate_log(log_, 0, 5, true).rotated);
    append(lines(1000, 2000));
    ASSERT_TRUE(rotate_log(log_, 0, 5, true).rotated);
    append(lines(2000, 2010));
    EXPECT_EQ(whole_stream(), lines(0, 2010));
}

TEST_F(LogStreamTest, TailReadsBackIntoOldFilesAndJoinsTheSplitLine) {
    append(lines(0, 1000));
    auto r = rotate_log(log_, 0, 5, true);
    ASSERT_TRUE(r.rotated);
    // Right after a rotation the live file holds less than 3 lines (nothing, after a copy +
    // truncate); a block boundary split a line unless the whole file moved.
    auto tail = tail_log(log_, 3);
    ASSERT_TRUE(tail);
    EXPECT_EQ(tail->text, lines(997, 1000));
    EXPECT_EQ(tail->end, lines(0, 1000).size());
    append(lines(1000, 1001));
    EXPECT_EQ(tail_log(log_, 2)->text, lines(999, 1001));
    EXPECT_EQ(tail_log(log_, 100000)->text, lines(0, 1001)); // fewer lines than asked: all that is kept
}

TEST_F(LogStreamTest, TailOfAnUnrotatedLog) {
    append("one\ntwo\nthree without newline");
    EXPECT_EQ(tail_log(log_, 2)->text, "two\nthree without newline");
    EXPECT_EQ(tail_log(log_, 0)->text, "");
    EXPECT_FALSE(tail_log(dir_ + "/none.log", 2));
}

TEST_F(LogStreamTest, BytesBeyondTheKeptFilesAreSkipped) {
    append(lines(0, 500));
    ASSERT_TRUE(rotate_log(log_, 0, 1, true).rotated);
    std::uint64_t first_removed = removed_bytes(log_);
    append(lines(500, 1000));
    ASSERT_TRUE(rotate_log(log_, 0, 1, true).rotated); // keep 1: the first rotation's file is gone
    LogStream s(log_, removed_bytes(log_));
    std::uint64_t pos = 0;
    std::string text = s.read_to_end(pos);
    EXPECT_EQ(text, (lines(0, 500) + lines(500, 1000)).substr(first_removed));
    EXPECT_EQ(pos, s.end());
}

TEST_F(LogStreamTest, LoweredKeepAndKeepZeroLeaveNoStaleOldFiles) {
    for (int i = 0; i < 4; ++i) {
        append(lines(i * 300, i * 300 + 300));
        ASSERT_TRUE(rotate_log(log_, 0, 4, true).rotated);
    }
    EXPECT_TRUE(fs::exists(log_ + ".4"));
    append(lines(1200, 1500));
    ASSERT_TRUE(rotate_log(log_, 0, 2, true).rotated);
    EXPECT_TRUE(fs::exists(log_ + ".2"));
    EXPECT_FALSE(fs::exists(log_ + ".3")); // would no longer chain back from the total
    EXPECT_TRUE(lines(0, 1500).ends_with(whole_stream()));
    append(lines(1500, 1700)); // more than a block, also after a copy + truncate emptied the log
    auto r = rotate_log(log_, 0, 0, true);
    EXPECT_FALSE(r.kept);
    EXPECT_EQ(r.discarded, 0u); // dropped by design, not for want of space
    EXPECT_FALSE(fs::exists(log_ + ".1"));
    EXPECT_NE(describe_rotation(r, log_, false).find("dropped (log_keep = 0)"), std::string::npos);
}
