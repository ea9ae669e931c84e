#include "llmctl/files.hpp"
#include "llmctl/paths.hpp"
#include "temp_dir.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

using namespace llmctl;
namespace fs = std::filesystem;

namespace {

using TempDir = llmctl::test_support::TempDir;

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

} // namespace

TEST(Files, ReadFileAndTail) {
    TempDir t;
    write(t.path + "/f", "first\nsecond\n");
    EXPECT_EQ(read_file(t.path + "/f"), "first\nsecond\n");
    EXPECT_EQ(read_tail(t.path + "/f", 7), "second\n");
    EXPECT_EQ(read_tail(t.path + "/f", 100), "first\nsecond\n");
    EXPECT_FALSE(read_file(t.path + "/missing"));
    EXPECT_FALSE(read_tail(t.path + "/missing", 10));
}

TEST(Files, ListDirLeavesOutDotEntries) {
    TempDir t;
    write(t.path + "/b", "");
    fs::create_directory(t.path + "/a");
    auto names = list_dir(t.path);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(list_dir(t.path + "/missing").empty());
}

TEST(Files, LoggedNamesAreTheLogsOfAStateDirSorted) {
    TempDir t;
    EXPECT_TRUE(logged_names(t.path).empty()); // no logs/ yet
    fs::create_directory(t.path + "/logs");
    for (auto f : {"zeta.log", "alpha.log", "alpha.log.1", "alpha.log.offset", ".log", "notes.txt"}) write(t.path + "/logs/" + f, "");
    EXPECT_EQ(logged_names(t.path), (std::vector<std::string>{"alpha", "zeta"}));
}
