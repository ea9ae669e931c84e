#include "llmctl/store.hpp"
#include "llmctl/wal_checkpointer.hpp"
#include "temp_dir.hpp"

#include <chrono>
#include <string>
#include <thread>
#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace llmctl;
using llmctl::test_support::TempDir;

namespace {

class WalCheckpointerTest : public ::testing::Test {
protected:
    TempDir tmp_;
    std::string dir_ = tmp_.path, path_ = dir_ + "/state.db";

    void locked_write() {
        auto locked = open_locked(dir_);
        Transaction tx(locked.store);
        locked.store.add_event("x", "test", std::string(200, 'e'));
        tx.commit();
    }
    off_t wal_bytes() const {
        struct stat sb {};
        return ::stat((path_ + "-wal").c_str(), &sb) == 0 ? sb.st_size : -1;
    }
};

// While serve's checkpointer lives, a locked write does not checkpoint on its own thread (its
// fsync would hold every lease decision): the WAL grows past the 128 frames at which a short
// invocation empties it, until the checkpointer copies it back and a commit starts it over.
TEST_F(WalCheckpointerTest, LockedWritesLeaveTheWalToItAndTheWalStartsOver) {
    { Store s = Store::open_write(path_); }
    WalCheckpointer checkpointer(dir_);
    EXPECT_TRUE(Store::checkpoints_elsewhere());
    for (int i = 0; i < 20'000 && Store::wal_frames_lately() < WalCheckpointer::k_copy_from_frames; ++i) locked_write();
    ASSERT_GE(Store::wal_frames_lately(), WalCheckpointer::k_copy_from_frames) << "a locked write emptied the WAL itself";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (Store::wal_frames_lately() >= WalCheckpointer::k_copy_from_frames && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(WalCheckpointer::k_look_every);
        locked_write(); // the commit that finds the WAL all copied starts it over
    }
    EXPECT_LT(Store::wal_frames_lately(), 100) << "the WAL never started over";
}

// Destroyed (serve exits), it empties the WAL, and locked writes checkpoint again as before.
TEST_F(WalCheckpointerTest, OnItsWayOutItEmptiesTheWal) {
    { Store s = Store::open_write(path_); }
    {
        WalCheckpointer checkpointer(dir_);
        for (int i = 0; i < 300; ++i) locked_write();
        EXPECT_GT(wal_bytes(), 128 * 4096);
    }
    EXPECT_FALSE(Store::checkpoints_elsewhere());
    EXPECT_EQ(wal_bytes(), 0);
}

// A state dir without a state file yet (serve made before anything ran): it finds the file once
// one is made, and empties its WAL on the way out.
TEST_F(WalCheckpointerTest, AFileMadeAfterItStartedIsTheOneItEmpties) {
    {
        WalCheckpointer checkpointer(dir_);
        std::this_thread::sleep_for(WalCheckpointer::k_look_every * 2);
        for (int i = 0; i < 300; ++i) locked_write();
        EXPECT_GT(wal_bytes(), 128 * 4096);
    }
    EXPECT_EQ(wal_bytes(), 0);
}

} // namespace
