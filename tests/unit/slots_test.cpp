// The slot queue's decision (my_turn) over leases written straight into a state file.
#include "llmctl/process.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/slots.hpp"
#include "llmctl/store.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

using namespace llmctl;

namespace {

class SlotsTest : public ::testing::Test {
protected:
    llmctl::test_support::TempDir dir_{"llmctl-slots"};
    Store store_ = Store::open_write(dir_.path + "/state.db");

    std::int64_t lease(const std::string& model, const char* state) {
        store_
            .prepare("INSERT INTO leases(model, owner_pid, owner_start_ticks, owner_boot_id, state, created_at) VALUES(?, 1, 1, 'b', ?, 0)")
            .bind(1, model)
            .bind(2, std::string(state))
            .run();
        return store_.last_insert_id();
    }

    static SlotRequest req(const std::string& model, int max_concurrent, int max_inflight = 0) {
        SlotRequest r;
        r.model = model;
        r.max_concurrent = max_concurrent;
        r.max_inflight = max_inflight;
        return r;
    }
};

} // namespace

TEST_F(SlotsTest, FirstComeFirstServedWithinAModel) {
    auto a = lease("m", "waiting");
    auto b = lease("m", "waiting");
    auto t = my_turn(store_, req("m", 1), a);
    EXPECT_TRUE(t.ok);
    EXPECT_EQ(t.place, 1);
    t = my_turn(store_, req("m", 1), b); // a free slot, but a is ahead and needs it
    EXPECT_FALSE(t.ok);
    EXPECT_EQ(t.place, 2);
    EXPECT_TRUE(my_turn(store_, req("m", 2), b).ok); // two free: a fits too, b may go first
    lease("m", "active");
    EXPECT_FALSE(my_turn(store_, req("m", 2), b).ok); // one free, and it is a's
}

TEST_F(SlotsTest, GrantableAreTheFirstWaitingThatFitTheFreeSlots) {
    lease("m", "active");
    auto a = lease("m", "waiting");
    auto b = lease("m", "waiting");
    auto c = lease("m", "waiting");
    lease("other", "waiting");
    EXPECT_EQ(grantable_leases(store_, req("m", 1)), std::vector<std::int64_t>{});
    EXPECT_EQ(grantable_leases(store_, req("m", 3)), (std::vector<std::int64_t>{a, b}));
    EXPECT_EQ(grantable_leases(store_, req("m", 10)), (std::vector<std::int64_t>{a, b, c}));
    EXPECT_EQ(grantable_leases(store_, req("m", 10, 2)), std::vector<std::int64_t>{a}); // max_inflight 2, one active
    for (auto id : grantable_leases(store_, req("m", 3))) EXPECT_TRUE(my_turn(store_, req("m", 3), id).ok) << id;
}

TEST_F(SlotsTest, AtMostMaxConcurrentActive) {
    lease("m", "active");
    lease("m", "active");
    auto w = lease("m", "waiting");
    EXPECT_FALSE(my_turn(store_, req("m", 2), w).ok);
    EXPECT_TRUE(my_turn(store_, req("m", 3), w).ok);
    EXPECT_TRUE(my_turn(store_, req("other", 1), lease("other", "waiting")).ok); // per model
}

TEST_F(SlotsTest, MaxInflightCapsAllModels) {
    lease("a", "active");
    auto w = lease("b", "waiting");
    EXPECT_FALSE(my_turn(store_, req("b", 4, 1), w).ok);
    EXPECT_TRUE(my_turn(store_, req("b", 4, 2), w).ok);
    EXPECT_TRUE(my_turn(store_, req("b", 4, 0), w).ok); // 0: no cap
}

TEST_F(SlotsTest, NoSlotWhileALiveStopDrainsTheServer) {
    auto w = lease("m", "waiting");
    Identity me = self_identity();
    ServerRow r;
    r.name = "m";
    r.instance = "i";
    r.status = "stopping";
    r.host = "127.0.0.1";
    r.port = 1;
    r.server = Identity{1, 1, "b"};
    r.owner_pid = me.pid;
    r.owner_start_ticks = static_cast<std::int64_t>(me.start_ticks);
    insert_server(store_, r);
    auto t = my_turn(store_, req("m", 4), w);
    EXPECT_FALSE(t.ok);
    EXPECT_EQ(t.place, 1);
    // A stop that died drains nothing: the slot is free (reap or a start finishes that stop).
    store_.prepare("UPDATE servers SET owner_pid=999999999").run();
    EXPECT_TRUE(my_turn(store_, req("m", 4), w).ok);
}

// A managed model's cap is the one recorded on its live server's row, whatever the acquirer's
// config says; without a row, with a row of an earlier llmctl (no cap) or a dead server, and for
// a `url` model, the acquirer's.
TEST_F(SlotsTest, TheCapRecordedOnALiveServerRowIsInForce) {
    lease("m", "active");
    auto w = lease("m", "waiting");
    auto managed = [](int cap) {
        auto r = req("m", cap);
        r.managed = true;
        return r;
    };
    // Queued before the server exists: the acquirer's cap (3) for now.
    EXPECT_TRUE(my_turn(store_, managed(3), w).ok);
    ServerRow r;
    r.name = "m";
    r.instance = "i";
    r.status = "running";
    r.host = "127.0.0.1";
    r.port = 1;
    r.server = self_identity(); // a live process
    r.max_concurrent = 1;
    insert_server(store_, r);
    // The server started with max_concurrent = 1: read at each decision, so it holds now.
    auto t = my_turn(store_, managed(3), w);
    EXPECT_FALSE(t.ok);
    EXPECT_EQ(t.cap, 1);
    EXPECT_TRUE(my_turn(store_, req("m", 3), w).ok); // a url model: the acquirer's config
    store_.prepare("UPDATE servers SET max_concurrent=2").run();
    t = my_turn(store_, managed(1), w); // an older config that says 1: the row's 2
    EXPECT_TRUE(t.ok);
    EXPECT_EQ(t.cap, 2);
    store_.prepare("UPDATE servers SET max_concurrent=NULL").run(); // a row of an earlier llmctl
    EXPECT_FALSE(my_turn(store_, managed(1), w).ok);
    store_.prepare("UPDATE servers SET max_concurrent=2, pid=999999999").run(); // its server is gone
    EXPECT_FALSE(my_turn(store_, managed(1), w).ok);
}
