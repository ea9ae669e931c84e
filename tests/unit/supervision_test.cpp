// The rest of supervision's pieces that need no process: holds, the prober's spec, and apply's
// plan (which rows are its own, what changed).

#include "llmctl/apply.hpp"
#include "llmctl/config.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/holds.hpp"
#include "llmctl/lookup.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/prober.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"
#include "llmctl/supervisor.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

using namespace llmctl;
using llmctl::test_support::TempDir;

namespace {

Config config_of(const std::string& text, const std::string& origin) {
    Config cfg = parse_config(text, "t.toml");
    cfg.origin = origin;
    for (auto& [name, m] : cfg.models) m.origin = origin;
    return cfg;
}

// A running row of `m` as its start would write it (no process behind it: plan_apply reads rows only).
ServerRow row_of_model(const ModelConfig& m, int port) {
    ServerRow r;
    r.name = m.name;
    r.instance = "i-" + m.name;
    r.status = "running";
    r.server = Identity{1, 1, "boot"};
    r.port = port;
    r.host = m.host;
    r.config_hash = config_hash(m);
    r.spec_json = model_spec_json(m);
    r.origin = m.origin;
    return r;
}

const char* k_config = R"(
[models.same]
command = ["srv", "--port", "{port}"]
[models.changed]
command = ["srv", "--port", "{port}"]
[models.gone]
command = ["srv", "--port", "{port}"]
[models.warm]
command = ["srv", "--port", "{port}"]
preload = true
)";

} // namespace

TEST(Holds, AStopHoldsOnlyWhatWouldComeBackAndAStartLetsGo) {
    ModelConfig m;
    m.name = "a";
    m.command = {"srv"};
    EXPECT_FALSE(stop_holds(m));
    m.restart = "on-failure";
    EXPECT_FALSE(stop_holds(m));
    m.restart = "always";
    EXPECT_TRUE(stop_holds(m));
    m.restart = "no";
    m.preload = true;
    EXPECT_TRUE(stop_holds(m));

    TempDir dir;
    auto s = Store::open_write(state_db_path(dir.path));
    EXPECT_FALSE(is_held(s, "a"));
    add_hold(s, "a", "/c.toml");
    add_hold(s, "a", "/c.toml"); // twice: one hold
    EXPECT_TRUE(is_held(s, "a"));
    ASSERT_EQ(load_holds(s).size(), 1u);
    EXPECT_EQ(load_holds(s)[0].origin, "/c.toml");
    EXPECT_TRUE(release_hold(s, "a"));
    EXPECT_FALSE(release_hold(s, "a"));
    EXPECT_FALSE(is_held(s, "a"));
}

TEST(Holds, AStopHoldsDownInItsMarkRunningOrNot) {
    TempDir dir;
    ModelConfig warm;
    warm.name = "warm";
    warm.command = {"srv"};
    warm.preload = true;
    ModelConfig plain = warm;
    plain.name = "plain";
    plain.preload = false;

    // Not running: held all the same (no reap may start it), and no row appears.
    StopResult r = stop_server(dir.path, "warm", Millis(100), Millis(0), {}, "stopped", "", {}, &warm);
    EXPECT_TRUE(r.held);
    EXPECT_FALSE(r.stopped);
    // A failed row (nothing of it runs): held, and its row goes.
    ServerRow failed = row_of_model(plain, 20999);
    failed.status = "failed";
    {
        auto s = Store::open_write(state_db_path(dir.path));
        insert_server(s, failed);
    }
    r = stop_server(dir.path, "plain", Millis(100), Millis(0), {}, "stopped", "", {}, &plain);
    EXPECT_FALSE(r.held) << "restart = \"no\" and no preload: nothing comes back by itself";
    EXPECT_TRUE(r.stopped);
    // Without `hold` (reap, restart, exec), nothing is held.
    EXPECT_FALSE(stop_server(dir.path, "warm2", Millis(100), Millis(0)).held);

    auto s = Store::open_write(state_db_path(dir.path));
    ASSERT_EQ(load_holds(s).size(), 1u);
    EXPECT_EQ(load_holds(s)[0].name, "warm");
    EXPECT_FALSE(find_server(s, "plain"));
}

TEST(Prober, TheSpecGoesThroughTheMonitorWhole) {
    ModelConfig m;
    m.name = "phi";
    EXPECT_EQ(probe_spec_json(m), "") << "no probe: no prober";
    m.probe = "completion";
    m.probe_every = Millis(50); // raised to 100 ms: never a busy loop
    m.probe_timeout = Millis(2000);
    m.restart = "on-failure";
    m.max_concurrent = 2;
    ProbeSpec s = parse_probe_spec(probe_spec_json(m));
    EXPECT_EQ(s.kind, "completion");
    EXPECT_EQ(s.every, Millis(100));
    EXPECT_EQ(s.timeout, Millis(2000));
    EXPECT_EQ(s.model, "phi");
    EXPECT_EQ(s.restart, "on-failure");
    EXPECT_EQ(s.max_concurrent, 2);
    EXPECT_THROW(parse_probe_spec("{}"), Error);
    EXPECT_THROW(parse_probe_spec(R"({"kind":"ping","every_ms":1,"timeout_ms":1,"model":"x"})"), Error);
}

TEST(Apply, ThePlanTouchesOnlyItsOwnConfigsRowsAndNamesWhatChanged) {
    TempDir dir;
    Config before = config_of(k_config, "/etc/llmctl.toml");
    {
        auto s = Store::open_write(state_db_path(dir.path));
        int port = 10500;
        for (const char* n : {"same", "changed", "gone"}) insert_server(s, row_of_model(*before.find(n), port++));
        ModelConfig other = *before.find("same");
        other.name = "other";
        other.origin = "/home/u/other.toml"; // another config file's
        insert_server(s, row_of_model(other, port++));
        ModelConfig adhoc = *before.find("same");
        adhoc.name = "adhoc";
        adhoc.adhoc = true; // started ad hoc next to this config
        insert_server(s, row_of_model(adhoc, port++));
        add_hold(s, "warm", "/etc/llmctl.toml");
    }
    const std::string text = R"(
[models.same]
command = ["srv", "--port", "{port}"]
[models.changed]
command = ["srv2", "--port", "{port}"]
env = { X = "1" }
[models.warm]
command = ["srv", "--port", "{port}"]
preload = true
)";
    Config after = config_of(text, "/etc/llmctl.toml");
    ASSERT_EQ(after.find("changed")->command[0], "srv2");
    ASSERT_FALSE(after.find("gone"));

    ApplyPlan plan = plan_apply(dir.path, after);
    std::vector<std::string> steps;
    for (const auto& s : plan.steps) steps.push_back(std::string(apply_verb(s.kind)) + " " + s.name + ": " + s.why);
    EXPECT_EQ(steps, (std::vector<std::string>{"restart changed: command, env changed", "stop gone: not in t.toml any more",
                                               "release warm: held down by a stop", "start warm: preload = true"}));
    EXPECT_EQ(plan.unchanged, 1);
    EXPECT_EQ(plan.foreign, 2);

    // The same config read from another file owns none of these rows.
    Config elsewhere = config_of(text, "/tmp/copy.toml");
    ApplyPlan none = plan_apply(dir.path, elsewhere);
    EXPECT_EQ(none.foreign, 5);
    for (const auto& s : none.steps) EXPECT_NE(s.kind, ApplyStep::Kind::restart) << s.name;
    for (const auto& s : none.steps) EXPECT_NE(s.kind, ApplyStep::Kind::stop) << s.name;
}

TEST(Apply, TheConfigHashCoversHostAndFixedPort) {
    Config cfg = config_of(k_config, "/c.toml");
    ModelConfig m = *cfg.find("same");
    const std::string base = config_hash(m);
    ModelConfig host = m;
    host.host = "::1";
    EXPECT_NE(config_hash(host), base);
    ModelConfig port = m;
    port.port = 10600;
    EXPECT_NE(config_hash(port), base);
    ModelConfig timeout = m;
    timeout.stop_timeout = Millis(1); // needs no restart
    EXPECT_EQ(config_hash(timeout), base);
}
