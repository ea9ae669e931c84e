#include "llmctl/paths.hpp"
#include "llmctl/request_ledger.hpp"
#include "llmctl/store.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

using namespace llmctl;

namespace {

RequestRecord a_request(int status, std::int64_t out) {
    RequestRecord r;
    r.model = "m";
    r.via = "serve";
    r.status = status;
    r.outcome = status == 200 ? "ok" : "error";
    r.tokens_in = 2;
    r.tokens_out = out;
    r.duration = Millis(10);
    return r;
}

std::int64_t one(Store& s, const char* sql) {
    auto q = s.prepare(sql);
    EXPECT_TRUE(q.step());
    return q.i64(0);
}

} // namespace

TEST(RequestLedger, RowsAreTrimmedAndTotalsKeepEveryOne) {
    llmctl::test_support::TempDir tmp("llmctl-ledger");
    { Store::open_write(state_db_path(tmp.path)); }
    std::vector<RequestRecord> many(12'000 + 1'250, a_request(200, 3));
    many.push_back(a_request(503, 0));
    for (int write = 0; write < 12; ++write) ASSERT_TRUE(record_requests(tmp.path, {many.begin(), many.begin() + 1000}));
    ASSERT_TRUE(record_requests(tmp.path, {many.begin() + 12'000, many.end()})); // (the newest 1,000 of these as rows)
    auto s = Store::open_write(state_db_path(tmp.path));
    const std::int64_t rows = one(s, "SELECT COUNT(*) FROM requests");
    EXPECT_GE(rows, k_requests_kept);
    EXPECT_LT(rows, k_requests_kept + 100);
    EXPECT_EQ(one(s, "SELECT requests FROM request_totals WHERE status = 200"), 12'000 + 1'250);
    EXPECT_EQ(one(s, "SELECT tokens_out FROM request_totals WHERE status = 200"), 3 * (12'000 + 1'250));
    EXPECT_EQ(one(s, "SELECT MAX(id) FROM requests"), 13'000); // 12 writes of 1,000, then the newest 1,000 of 1,251
    EXPECT_EQ(one(s, "SELECT requests FROM request_totals WHERE status = 503"), 1);
}

TEST(RequestLedger, TheWriterThreadWritesWhatIsPendingWhenItEnds) {
    llmctl::test_support::TempDir tmp("llmctl-ledger");
    { Store::open_write(state_db_path(tmp.path)); }
    {
        RequestLedger ledger(tmp.path, Millis(60'000)); // (no round before the end)
        for (int i = 0; i < 5; ++i) ledger.add(a_request(200, 1));
    }
    auto s = Store::open_write(state_db_path(tmp.path));
    EXPECT_EQ(one(s, "SELECT COUNT(*) FROM requests"), 5);
}

TEST(RequestLedger, NoStateFileLosesTheRecordNotTheCaller) {
    llmctl::test_support::TempDir tmp("llmctl-ledger");
    EXPECT_FALSE(record_requests(tmp.path + "/missing", {a_request(200, 1)}));
}

TEST(RequestLedger, ABatchHoldsTheNewestRowsAndCountsEveryRequest) {
    LedgerBatch b;
    for (int i = 0; i < 5'000; ++i) b.add(a_request(200, i));
    b.add(a_request(499, 7));
    ASSERT_EQ(b.rows.size(), LedgerBatch::k_rows_per_write);
    EXPECT_EQ(b.rows.back().status, 499);
    EXPECT_EQ(b.rows.front().tokens_out, 5'000 - LedgerBatch::k_rows_per_write + 1); // the oldest kept
    ASSERT_EQ(b.totals.size(), 2u);
    const auto& ok = b.totals.at({"m", "serve", 200});
    EXPECT_EQ(ok.requests, 5'000);
    EXPECT_EQ(ok.tokens_out, 4'999 * 5'000 / 2);
    EXPECT_EQ(ok.tokens_in, 2 * 5'000);
    EXPECT_EQ(b.totals.at({"m", "serve", 499}).requests, 1);
}

TEST(RequestLedger, AWriteThatFailedIsCarriedIntoTheNext) {
    llmctl::test_support::TempDir tmp("llmctl-ledger");
    {
        RequestLedger ledger(tmp.path, Millis(60'000)); // (no round of its own: flush() is the write)
        for (int i = 0; i < 3; ++i) ledger.add(a_request(200, 4));
        ledger.flush(); // no state file yet: not written, kept
        { Store::open_write(state_db_path(tmp.path)); }
        ledger.add(a_request(200, 4));
        ledger.flush();
        auto s = Store::open_write(state_db_path(tmp.path));
        EXPECT_EQ(one(s, "SELECT requests FROM request_totals WHERE status = 200"), 4);
        EXPECT_EQ(one(s, "SELECT tokens_out FROM request_totals WHERE status = 200"), 16);
        EXPECT_EQ(one(s, "SELECT COUNT(*) FROM requests"), 4);
    }
}

TEST(RequestLedger, AnOlderBatchGoesBeforeAndItsTotalsAreAdded) {
    LedgerBatch older, newer;
    for (int i = 0; i < 900; ++i) older.add(a_request(200, 1));
    older.add(a_request(500, 0));
    for (int i = 0; i < 300; ++i) newer.add(a_request(200, 2));
    newer.add_older(std::move(older));
    ASSERT_EQ(newer.rows.size(), LedgerBatch::k_rows_per_write);
    EXPECT_EQ(newer.rows.back().tokens_out, 2); // the newest stay last
    EXPECT_EQ(newer.rows[699].status, 500);     // then the older batch's newest
    EXPECT_EQ(newer.totals.at({"m", "serve", 200}).requests, 1'200);
    EXPECT_EQ(newer.totals.at({"m", "serve", 200}).tokens_out, 900 + 600);
    EXPECT_EQ(newer.totals.at({"m", "serve", 500}).requests, 1);
}
