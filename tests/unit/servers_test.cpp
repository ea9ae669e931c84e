#include "llmctl/process.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"
#include "temp_dir.hpp"

#include <cstdlib>
#include <gtest/gtest.h>
#include <unistd.h>

using namespace llmctl;

namespace {

class ServersTest : public ::testing::Test {
protected:
    llmctl::test_support::TempDir dir_{"llmctl-servers"};
};

ServerRow full_row(const std::string& name) {
    ServerRow r;
    r.name = name;
    r.instance = "0123456789abcdef";
    r.status = "running";
    r.server = self_identity();
    r.port = 10500;
    r.host = "::1";
    r.argv_json = R"(["llama-server","--port","10500"])";
    r.log_path = "/state/logs/" + name + ".log";
    r.owner_pid = 42;
    r.owner_start_ticks = 4242;
    r.started_at = 1000;
    r.ready_at = 2000;
    r.last_used = 3000;
    r.config_hash = "00ff00ff00ff00ff";
    r.exit_code = 3;
    r.error = "exited with status 3";
    r.spec_json = R"({"command":["x"]})";
    return r;
}

} // namespace

TEST_F(ServersTest, InsertThenLoadGivesEveryColumnBack) {
    auto store = Store::open_write(dir_.path + "/state.db");
    ServerRow in = full_row("b");
    insert_server(store, in);
    ServerRow sparse; // what a --no-wait start writes: no owner, no port yet, no spec
    sparse.name = "a";
    sparse.instance = "1";
    sparse.status = "starting";
    sparse.server = Identity{1, 1, "boot"};
    insert_server(store, sparse);
    auto rows = load_servers(store);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].name, "a"); // ordered by name
    EXPECT_FALSE(rows[0].port);
    EXPECT_FALSE(rows[0].owner_pid);
    EXPECT_EQ(rows[0].spec_json, "");
    EXPECT_EQ(rows[0].error, "");
    // An empty error or spec is stored as NULL, as the INSERTs it replaced left them.
    auto nulls = store.prepare("SELECT count(*) FROM servers WHERE name='a' AND error IS NULL AND spec IS NULL AND port IS NULL");
    ASSERT_TRUE(nulls.step());
    EXPECT_EQ(nulls.i64(0), 1);
    const ServerRow& out = rows[1];
    EXPECT_EQ(out.name, in.name);
    EXPECT_EQ(out.instance, in.instance);
    EXPECT_EQ(out.status, in.status);
    EXPECT_EQ(out.server, in.server);
    EXPECT_EQ(out.port, in.port);
    EXPECT_EQ(out.host, in.host);
    EXPECT_EQ(out.argv_json, in.argv_json);
    EXPECT_EQ(out.log_path, in.log_path);
    EXPECT_EQ(out.owner_pid, in.owner_pid);
    EXPECT_EQ(out.owner_start_ticks, in.owner_start_ticks);
    EXPECT_EQ(out.started_at, in.started_at);
    EXPECT_EQ(out.ready_at, in.ready_at);
    EXPECT_EQ(out.last_used, in.last_used);
    EXPECT_EQ(out.config_hash, in.config_hash);
    EXPECT_EQ(out.exit_code, in.exit_code);
    EXPECT_EQ(out.error, in.error);
    EXPECT_EQ(out.spec_json, in.spec_json);
    EXPECT_EQ(out.url(), "http://[::1]:10500");
    ASSERT_TRUE(find_server(store, "b"));
    EXPECT_FALSE(find_server(store, "c"));
}

TEST_F(ServersTest, EffectiveStatusIsDeadWhenTheProcessIsGone) {
    ServerRow r = full_row("x");
    EXPECT_EQ(effective_status(r), "running"); // this test process is alive
    r.server.start_ticks += 1;                 // a recycled pid
    EXPECT_EQ(effective_status(r), "dead");
    r.status = "failed";
    EXPECT_EQ(effective_status(r), "failed"); // failed stays failed
}
