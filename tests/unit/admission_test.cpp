// plan_admission: what fits, whom a start evicts (least recently used, idle, unpinned, running
// only, never a partial eviction), and who holds the memory when it must wait.
#include "llmctl/admission.hpp"
#include "llmctl/gpu.hpp"
#include "gguf_writer.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

using namespace llmctl;

namespace {

constexpr std::uint64_t GiB = 1ull << 30;

PoolHolder holder(const std::string& name, std::uint64_t gib, std::int64_t last_used, const std::string& status = "running") {
    PoolHolder h;
    h.row.name = name;
    h.row.status = status;
    h.row.last_used = last_used;
    h.memory = gib * GiB;
    return h;
}

PoolState pool(std::uint64_t budget_gib, std::vector<PoolHolder> holders) {
    PoolState p;
    p.name = "gpu0";
    p.budget = budget_gib * GiB;
    p.holders = std::move(holders);
    return p;
}

std::vector<std::string> names(const AdmissionPlan& plan) {
    std::vector<std::string> out;
    for (const auto& v : plan.victims) out.push_back(v.name);
    return out;
}

} // namespace

TEST(PlanAdmission, FitsBesideWhatThePoolHolds) {
    auto plan = plan_admission(pool(20, {holder("a", 9, 1)}), 9 * GiB);
    EXPECT_EQ(plan.kind, AdmissionPlan::Kind::fits);
    EXPECT_TRUE(plan.victims.empty());
    EXPECT_EQ(plan_admission(pool(18, {holder("a", 9, 1)}), 9 * GiB).kind, AdmissionPlan::Kind::fits); // exactly full
}

TEST(PlanAdmission, EvictsTheLeastRecentlyUsedFirstAndNoMoreThanNeeded) {
    auto plan = plan_admission(pool(20, {holder("a", 9, 200), holder("b", 9, 100)}), 9 * GiB);
    EXPECT_EQ(plan.kind, AdmissionPlan::Kind::evict);
    EXPECT_EQ(names(plan), std::vector<std::string>{"b"});
    plan = plan_admission(pool(20, {holder("a", 6, 300), holder("b", 6, 100), holder("c", 6, 200)}), 14 * GiB);
    EXPECT_EQ(names(plan), (std::vector<std::string>{"b", "c"}));
}

TEST(PlanAdmission, NeverEvictsABusyPinnedStartingOrStoppingServer) {
    auto busy = holder("busy", 9, 1);
    busy.in_flight = 1;
    auto queued = holder("queued", 9, 2);
    queued.waiting = 1;
    auto exec = holder("exec", 9, 3);
    exec.exec_users = 1;
    auto pinned = holder("pinned", 9, 4);
    pinned.pinned = true;
    auto starting = holder("starting", 9, 5, "starting");
    auto stopping = holder("stopping", 9, 6, "stopping");
    auto admitting = holder("admitting", 9, 7, "admitting");
    auto idle = holder("idle", 9, 100);
    auto plan = plan_admission(pool(80, {busy, queued, exec, pinned, starting, stopping, admitting, idle}), 9 * GiB);
    EXPECT_EQ(plan.kind, AdmissionPlan::Kind::evict);
    EXPECT_EQ(names(plan), std::vector<std::string>{"idle"});
}

TEST(PlanAdmission, WaitsWithoutEvictingWhenEvictingAllWouldNotFreeEnough) {
    auto busy = holder("qwen32", 18, 1);
    busy.in_flight = 2;
    auto plan = plan_admission(pool(24, {busy, holder("idle", 4, 2)}), 9 * GiB);
    EXPECT_EQ(plan.kind, AdmissionPlan::Kind::wait);
    EXPECT_TRUE(plan.victims.empty()); // not a partial eviction of "idle"
    EXPECT_EQ(plan.holders, "qwen32 (18.0 GiB) is serving 2 requests");
}

TEST(PlanAdmission, SaysWhyEachHolderCannotGo) {
    auto a = holder("a", 1, 1);
    a.waiting = 1;
    auto b = holder("b", 1, 1);
    b.exec_users = 1;
    auto c = holder("c", 1, 1);
    c.pinned = true;
    auto plan = plan_admission(pool(3, {a, b, c, holder("d", 1, 1, "starting"), holder("e", 1, 1, "admitting")}), 1 * GiB);
    EXPECT_EQ(plan.kind, AdmissionPlan::Kind::wait);
    EXPECT_EQ(plan.holders, "a (1.0 GiB) has 1 request waiting, b (1.0 GiB) is in use by llmctl exec, c (1.0 GiB) is pinned, "
                            "d (1.0 GiB) is starting, e (1.0 GiB) is waiting to start");
}

TEST(FormatMemory, GiBWithOneDecimalElseMiB) {
    EXPECT_EQ(format_memory(9 * GiB), "9.0 GiB");
    EXPECT_EQ(format_memory(GiB + GiB / 2), "1.5 GiB");
    EXPECT_EQ(format_memory(512ull << 20), "512 MiB");
}

TEST(NvidiaSmi, ParsesTheTotalInMiB) {
    EXPECT_EQ(parse_gpu_total("24576\n"), 24576ull << 20);
    EXPECT_EQ(parse_gpu_total(" 81920 \r\n"), 81920ull << 20);
    EXPECT_EQ(parse_gpu_total(""), std::nullopt);
    EXPECT_EQ(parse_gpu_total("No devices were found\n"), std::nullopt);
    EXPECT_EQ(parse_gpu_total("0\n"), std::nullopt);
}

TEST(NvidiaSmi, SumsTheComputeAppsOfTheGivenProcesses) {
    const std::string csv = "4242, 3072\n4243, 1024\n999, 8000\n4244, [N/A]\n";
    EXPECT_EQ(parse_gpu_apps(csv, {4242, 4243}), 4096ull << 20);
    EXPECT_EQ(parse_gpu_apps(csv, {4244}), 0u); // its memory is not known
    EXPECT_EQ(parse_gpu_apps("", {4242}), 0u);  // no compute process at all
    EXPECT_EQ(parse_gpu_apps("garbage\n", {4242}), std::nullopt);
}

// config check reads the GGUF headers of the "auto" models in pools: a missing file, and a model
// larger than its whole pool, are named with the line of the model's memory.
TEST(CheckPoolMemory, NamesAnEstimateThatCannotBeMadeOrDoesNotFit) {
    test_support::TempDir dir;
    test_support::GgufWriter().llama(32, 4096, 32, 32, 4096).write(dir.path + "/7b.gguf", 4'080'000'000);
    const std::string text = "[pools.small]\nmemory = \"4GiB\"\n[pools.big]\nmemory = \"24GiB\"\n"
                             "[models.fits]\ncommand = [\"llama-server\", \"-m\", \"" +
                             dir.path +
                             "/7b.gguf\", \"-c\", \"4096\"]\npool = \"big\"\n"
                             "[models.large]\ncommand = [\"llama-server\", \"-m\", \"" +
                             dir.path +
                             "/7b.gguf\"]\npool = \"small\"\n"
                             "memory = \"auto\"\n"
                             "[models.lost]\ncommand = [\"llama-server\", \"-m\", \"" +
                             dir.path + "/none.gguf\"]\npool = \"big\"\n";
    auto problems = check_pool_memory(parse_config(text, "t.toml"));
    ASSERT_EQ(problems.size(), 2u);
    EXPECT_EQ(problems[0].rfind("t.toml:11:10: model \"large\" takes ", 0), 0u) << problems[0];
    EXPECT_NE(problems[0].find("more than the whole of pool \"small\" (4.0 GiB)"), std::string::npos) << problems[0];
    EXPECT_EQ(problems[1].rfind("t.toml:12:9: model \"lost\": ", 0), 0u) << problems[1];
    EXPECT_NE(problems[1].find("none.gguf"), std::string::npos) << problems[1];
}
