// The gateways table: a registry's row from construction to destruction, its counters, dead
// owners' rows, and a state file that a newer llmctl migrates under a running gateway.
#include "llmctl/errors.hpp"
#include "llmctl/gateway_registry.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/store.hpp"
#include "temp_dir.hpp"

#include <chrono>
#include <fmt/format.h>
#include <functional>
#include <gtest/gtest.h>
#include <thread>

using namespace llmctl;

namespace {

class GatewayRegistryTest : public ::testing::Test {
protected:
    llmctl::test_support::TempDir tmp_{"llmctl-gateways"};
    std::string dir_ = tmp_.path + "/state";
    std::atomic<int> in_flight_{0};
    std::atomic<std::uint64_t> served_{0};
    std::vector<std::string> logged_;

    std::unique_ptr<GatewayRegistry> start(const std::string& url = "http://127.0.0.1:8080") {
        return std::make_unique<GatewayRegistry>(dir_, url, in_flight_, served_, [this](const std::string& l) { logged_.push_back(l); });
    }

    std::vector<GatewayRow> live() {
        auto s = Store::open_read(state_db_path(dir_));
        return s ? live_gateways(*s) : std::vector<GatewayRow>{};
    }

    // Polls (10 ms) until `done`, for at most 5 s: the registry publishes once a second.
    static bool eventually(const std::function<bool()>& done) {
        for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5); std::chrono::steady_clock::now() < end;) {
            if (done()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return done();
    }

    void insert_dead_gateway() {
        auto s = Store::open_write(state_db_path(dir_));
        s.exec("INSERT INTO gateways(url, owner_pid, owner_start_ticks, owner_boot_id, started_at) "
               "VALUES('http://127.0.0.1:1', 999999999, 1, 'b', 0)");
    }
};

} // namespace

TEST_F(GatewayRegistryTest, ARowFromStartToCleanExitWithItsCounters) {
    auto reg = start();
    auto rows = live();
    ASSERT_EQ(rows.size(), 1u); // registered when constructed: ps lists it as soon as serve listens
    EXPECT_EQ(rows[0].url, "http://127.0.0.1:8080");
    EXPECT_EQ(rows[0].owner, self_identity());
    EXPECT_EQ(rows[0].in_flight, 0);
    in_flight_ = 3;
    served_ = 42;
    EXPECT_TRUE(eventually([&] {
        auto r = live();
        return r.size() == 1 && r[0].in_flight == 3 && r[0].served == 42;
    }));
    EXPECT_FALSE(reg->must_stop());
    reg.reset();
    EXPECT_TRUE(live().empty()); // a clean exit deletes the row
}

TEST_F(GatewayRegistryTest, DeadOwnersRowsAreIgnoredAndClearedByTheNextGateway) {
    ensure_state_dir(dir_);
    insert_dead_gateway();
    EXPECT_TRUE(live().empty());
    {
        auto s = Store::open_read(state_db_path(dir_));
        ASSERT_TRUE(s);
        EXPECT_EQ(dead_gateways(*s).size(), 1u);
    }
    auto reg = start();
    auto s = Store::open_write(state_db_path(dir_));
    EXPECT_TRUE(dead_gateways(s).empty());
    EXPECT_EQ(live_gateways(s).size(), 1u);
    insert_dead_gateway();
    EXPECT_EQ(delete_dead_gateways(s).size(), 1u); // what reap does
    EXPECT_EQ(live_gateways(s).size(), 1u);
}

TEST_F(GatewayRegistryTest, ANewerStateFileStopsTheGateway) {
    auto reg = start();
    {
        auto s = Store::open_write(state_db_path(dir_));
        s.exec(fmt::format("PRAGMA user_version={}", k_schema_version + 1).c_str());
    }
    ASSERT_TRUE(eventually([&] { return reg->must_stop(); }));
    auto why = reg->fatal();
    ASSERT_TRUE(why);
    EXPECT_EQ(why->code(), Exit::newer_state);
    ASSERT_FALSE(logged_.empty());
    EXPECT_NE(logged_.back().find("newer than this llmctl"), std::string::npos) << logged_.back();
    reg.reset(); // leaves the newer llmctl's file alone
    EXPECT_THROW(start(), Error);
}
