// The lease broker (group commit): many threads' lease steps in shared transactions, a step that
// throws undoing itself alone, and releases made without waiting.
#include "llmctl/lease_broker.hpp"
#include "llmctl/slots.hpp"
#include "llmctl/store.hpp"
#include "temp_dir.hpp"

#include <atomic>
#include <gtest/gtest.h>
#include <set>
#include <thread>
#include <vector>

using namespace llmctl;

namespace {

std::int64_t count_leases(const std::string& dir, const char* where = "1") {
    auto store = Store::open_read(dir + "/state.db");
    if (!store) return -1;
    auto q = store->prepare((std::string("SELECT count(*) FROM leases WHERE ") + where).c_str());
    return q.step() ? q.i64(0) : -1;
}

SlotRequest request(LeaseBroker& broker, int cap, int max_queue = 0) {
    SlotRequest r;
    r.model = "m";
    r.max_concurrent = cap;
    r.max_queue = max_queue;
    r.take_if_ready = true; // a `url`-like model (not managed): taken at once when it fits
    r.broker = &broker;
    return r;
}

} // namespace

TEST(LeaseBrokerTest, ManyThreadsGetDistinctLeasesWithinTheCap) {
    test_support::TempDir dir{"llmctl-broker"};
    init_state_file(dir.path);
    std::set<std::int64_t> ids;
    std::mutex mu;
    {
        LeaseBroker broker(dir.path);
        SlotRequest req = request(broker, 1000);
        std::vector<std::thread> threads;
        for (int t = 0; t < 16; ++t)
            threads.emplace_back([&] {
                for (int i = 0; i < 20; ++i) {
                    QueuedLease lease(dir.path, req);
                    ASSERT_TRUE(lease.taken());
                    Slot slot = lease.wait();
                    std::lock_guard<std::mutex> g(mu);
                    ids.insert(slot.id());
                }
            });
        for (auto& t : threads) t.join();
    } // the broker's last round makes the last releases
    EXPECT_EQ(ids.size(), 16u * 20u);
    EXPECT_EQ(count_leases(dir.path), 0);
}

TEST(LeaseBrokerTest, AFullQueueRefusesOneStepAndKeepsTheOthers) {
    test_support::TempDir dir{"llmctl-broker"};
    init_state_file(dir.path);
    LeaseBroker broker(dir.path);
    SlotRequest held = request(broker, 1);
    Slot holder = Slot::acquire(dir.path, held); // the one slot
    SlotRequest queued = request(broker, 1, 2);  // two may wait
    std::atomic<int> refused{0};
    std::vector<std::unique_ptr<QueuedLease>> waiting(4);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&, i] {
            try {
                waiting[static_cast<std::size_t>(i)] = std::make_unique<QueuedLease>(dir.path, queued);
            } catch (const QueueFull&) {
                ++refused;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(refused.load(), 2);
    EXPECT_EQ(count_leases(dir.path, "state='waiting'"), 2);
    EXPECT_EQ(count_leases(dir.path, "state='active'"), 1);
}

TEST(LeaseBrokerTest, AReleaseIsMadeWithoutWaitingAndFreesTheSlot) {
    test_support::TempDir dir{"llmctl-broker"};
    init_state_file(dir.path);
    LeaseBroker broker(dir.path);
    SlotRequest req = request(broker, 1);
    {
        Slot s = Slot::acquire(dir.path, req);
        EXPECT_EQ(count_leases(dir.path, "state='active'"), 1);
    }
    // The next step's round comes after the release's: the slot is free for it.
    QueuedLease next(dir.path, req);
    EXPECT_TRUE(next.taken());
}
