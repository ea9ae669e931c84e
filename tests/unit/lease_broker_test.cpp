// The lease broker (group commit): many threads' lease steps in shared transactions, a step that
// throws undoing itself alone, releases made without waiting; steps submitted without waiting,
// and spares (a quick request's slot taken back by the next until its round deletes it).
#include "llmctl/lease_broker.hpp"
#include "llmctl/slots.hpp"
#include "llmctl/store.hpp"
#include "temp_dir.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
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

namespace {

// A quick take through the broker without waiting (serve's event loop): the lease it got, or 0.
std::int64_t quick_take(LeaseBroker& broker, const std::string& dir, const SlotRequest& req) {
    std::mutex mu;
    std::condition_variable cv;
    bool answered = false;
    std::int64_t id = 0;
    broker.submit(
        [&](Store& store) {
            if (auto s = take_if_free(store, dir, req)) {
                id = s->id();
                s->forget(); // (the caller releases it through the broker)
            }
        },
        [&](std::exception_ptr e) {
            std::lock_guard<std::mutex> g(mu);
            if (e) id = 0;
            answered = true;
            cv.notify_one();
        });
    std::unique_lock<std::mutex> g(mu);
    cv.wait(g, [&] { return answered; });
    return id;
}

LeaseBroker::Spare spare_of(std::int64_t id) {
    LeaseBroker::Spare s;
    s.id = id;
    s.model = "m";
    s.granted = std::chrono::steady_clock::now();
    return s;
}

// A state file and its broker, for the quick way's tests.
class QuickWay : public ::testing::Test {
protected:
    std::int64_t take(int cap = 1) { return quick_take(broker, dir.path, request(broker, cap)); }
    bool spare_back(std::chrono::seconds granted_within = std::chrono::seconds(1)) {
        return broker.take_spare("m", std::chrono::steady_clock::now() - granted_within).has_value();
    }
    test_support::TempDir dir{"llmctl-broker"};
    int schema = init_state_file(dir.path); // (before the broker, as serve makes it)
    LeaseBroker broker{dir.path};
};

} // namespace

TEST_F(QuickWay, ASubmittedStepTakesAFreeSlotAndWritesNothingWhenThereIsNone) {
    std::int64_t first = take();
    EXPECT_NE(first, 0);
    EXPECT_EQ(count_leases(dir.path, "state='active'"), 1);
    EXPECT_EQ(take(), 0) << "a second slot of a model whose cap is 1";
    EXPECT_EQ(count_leases(dir.path), 1) << "the refused take wrote a lease";
    broker.release(first);
}

TEST_F(QuickWay, ASpareIsTakenBackUntilItsRoundThenDeleted) {
    std::int64_t id = take();
    ASSERT_NE(id, 0);
    broker.release_spare(spare_of(id));
    const auto let_go = std::chrono::steady_clock::now();
    auto back = broker.take_spare("m", std::chrono::steady_clock::now() - std::chrono::seconds(1));
    if (!back && std::chrono::steady_clock::now() - let_go >= LeaseBroker::k_release_delay)
        GTEST_SKIP() << "the machine is too loaded: the spare was due before it was asked for";
    ASSERT_TRUE(back);
    EXPECT_EQ(back->id, id);
    EXPECT_FALSE(spare_back()) << "handed out twice";
    EXPECT_EQ(count_leases(dir.path, "state='active'"), 1);
    // A round for another step meanwhile leaves a young spare alone (looked at when the round
    // came before the spare was due: a loaded machine may take longer).
    broker.release_spare(spare_of(id));
    const auto released = std::chrono::steady_clock::now();
    std::int64_t other = take();
    if (std::chrono::steady_clock::now() - released < LeaseBroker::k_release_delay) {
        EXPECT_EQ(other, 0);
        EXPECT_TRUE(spare_back());
    } else if (other) {
        id = other; // (the spare was due and deleted: this lease is the one that goes on)
    } else {
        (void)spare_back();
    }
    // Not taken back, it is deleted by a round of its own (k_release_delay after).
    broker.release_spare(spare_of(id));
    auto t0 = std::chrono::steady_clock::now();
    while (count_leases(dir.path) != 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(count_leases(dir.path), 0);
    EXPECT_FALSE(spare_back());
    EXPECT_NE(take(), 0) << "the slot is free again";
}

TEST_F(QuickWay, ASpareOfAnotherModelOrGrantedTooLongAgoIsNotHandedOut) {
    std::int64_t id = take();
    ASSERT_NE(id, 0);
    LeaseBroker::Spare s = spare_of(id);
    s.granted -= std::chrono::seconds(5);
    broker.release_spare(s);
    const auto let_go = std::chrono::steady_clock::now();
    EXPECT_FALSE(broker.take_spare("other", std::chrono::steady_clock::now() - std::chrono::seconds(60)));
    EXPECT_FALSE(spare_back());
    auto back = broker.take_spare("m", std::chrono::steady_clock::now() - std::chrono::seconds(60));
    if (!back && std::chrono::steady_clock::now() - let_go >= LeaseBroker::k_release_delay)
        GTEST_SKIP() << "the machine is too loaded: the spare was due before it was asked for";
    EXPECT_TRUE(back) << "a spare within the bound was not handed out";
}

TEST_F(QuickWay, TheOldestSpareGoesFirst) {
    std::int64_t first = take(2), second = take(2);
    ASSERT_NE(first, 0);
    ASSERT_NE(second, 0);
    broker.release_spare(spare_of(first));
    const auto let_go = std::chrono::steady_clock::now();
    broker.release_spare(spare_of(second));
    auto a = broker.take_spare("m", std::chrono::steady_clock::now() - std::chrono::seconds(1));
    auto b = broker.take_spare("m", std::chrono::steady_clock::now() - std::chrono::seconds(1));
    if ((!a || !b) && std::chrono::steady_clock::now() - let_go >= LeaseBroker::k_release_delay)
        GTEST_SKIP() << "the machine is too loaded: a spare was due before it was asked for";
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->id, first) << "the newer spare went first: the older one would fall due under a steady load";
    EXPECT_EQ(b->id, second);
    broker.release(first);
    broker.release(second);
}

TEST(LeaseBrokerTest, SparesLeftAtTheEndAreDeleted) {
    test_support::TempDir dir{"llmctl-broker"};
    init_state_file(dir.path);
    {
        LeaseBroker broker(dir.path);
        std::int64_t id = quick_take(broker, dir.path, request(broker, 4));
        ASSERT_NE(id, 0);
        broker.release_spare(spare_of(id));
    }
    EXPECT_EQ(count_leases(dir.path), 0);
}
