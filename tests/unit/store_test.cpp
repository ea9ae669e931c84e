#include "llmctl/errors.hpp"
#include "llmctl/files.hpp"
#include "llmctl/store.hpp"
#include "llmctl/strings.hpp"
#include "temp_dir.hpp"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>
#include <fstream>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace llmctl;

namespace {

class StoreTest : public ::testing::Test {
protected:
    void write(const std::string& bytes) { std::ofstream(path_, std::ios::binary) << bytes; }
    llmctl::test_support::TempDir tmp_{"llmctl-store"};
    std::string dir_ = tmp_.path, path_ = dir_ + "/state.db";
};

void insert_server(Store& s, const std::string& name, int port, const std::string& status = "running") {
    s.prepare("INSERT INTO servers(name, instance, status, port) VALUES(?,?,?,?)")
        .bind(1, name)
        .bind(2, "i-" + name)
        .bind(3, status)
        .bind(4, port)
        .run();
}

// Takes a current file back to the tables of version 6, 5, then 4 (the servers table keeps its newer
// columns: migrating to 5 and 6 makes the table anew from the older ones).
#define UNDO_V8 "DROP TABLE event_totals; DROP TABLE requests; DROP TABLE request_totals; "
constexpr const char* k_undo_v8 = UNDO_V8;
constexpr const char* k_undo_v7 = UNDO_V8 "DROP TABLE holds; ALTER TABLE leases DROP COLUMN progress_at; ";
constexpr const char* k_undo_v6 = UNDO_V8 "DROP TABLE holds; ALTER TABLE leases DROP COLUMN progress_at; DROP TABLE exits; ";
constexpr const char* k_undo_v5 = UNDO_V8
    "DROP TABLE holds; ALTER TABLE leases DROP COLUMN progress_at; DROP TABLE exits; DROP TABLE footprints; DROP TABLE admissions; ";

int count_servers(Store& s) {
    auto st = s.prepare("SELECT count(*) FROM servers");
    st.step();
    return static_cast<int>(st.i64(0));
}

} // namespace

TEST_F(StoreTest, CreatesFileWithModeAndSchema) {
    auto s = Store::open_write(path_);
    EXPECT_EQ(s.user_version(), k_schema_version);
    struct stat st {};
    ASSERT_EQ(stat(path_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto jm = s.prepare("PRAGMA journal_mode");
    ASSERT_TRUE(jm.step());
    EXPECT_EQ(jm.str(0), "wal");
}

TEST_F(StoreTest, MigratesV0ToLatest) {
    {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
        sqlite3_exec(db, "CREATE TABLE unrelated(x); PRAGMA user_version=0;", nullptr, nullptr, nullptr);
        sqlite3_close(db);
    }
    auto s = Store::open_write(path_);
    EXPECT_EQ(s.user_version(), k_schema_version);
    for (const char* t : {"servers", "leases", "events", "sessions", "messages", "exec_users"}) {
        auto q = s.prepare("SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?");
        q.bind(1, t);
        ASSERT_TRUE(q.step());
        EXPECT_EQ(q.i64(0), 1) << t;
    }
    // Reopening is a no-op.
    auto again = Store::open_write(path_);
    EXPECT_EQ(again.user_version(), k_schema_version);
}

// A version-2 file (before servers.spec), as an earlier llmctl left it, is readable at once: a
// reader (ps, the hot path of start) migrates it rather than showing no servers.
TEST_F(StoreTest, ReaderMigratesAV2FileAndSeesItsRows) {
    {
        auto s = Store::open_write(path_);
        insert_server(s, "a", 10501);
        s.exec((std::string(k_undo_v5) +
                "DROP TABLE gateways; ALTER TABLE servers DROP COLUMN max_concurrent; ALTER TABLE servers DROP COLUMN spec; "
                "PRAGMA user_version=2;")
                   .c_str());
    }
    auto r = Store::open_read(path_);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->user_version(), k_schema_version);
    EXPECT_EQ(count_servers(*r), 1);
    auto q = r->prepare("SELECT spec FROM servers");
    ASSERT_TRUE(q.step());
    EXPECT_TRUE(q.is_null(0));
}

// A version-1 file (before exec_users) keeps its rows and gains the table.
TEST_F(StoreTest, MigratesV1ToV2KeepingRows) {
    {
        auto s = Store::open_write(path_);
        insert_server(s, "a", 10501);
        s.exec((std::string(k_undo_v5) + "DROP TABLE gateways; ALTER TABLE servers DROP COLUMN max_concurrent; DROP TABLE exec_users; "
                                         "ALTER TABLE servers DROP COLUMN spec; PRAGMA user_version=1;")
                   .c_str());
    }
    auto s = Store::open_write(path_);
    EXPECT_EQ(s.user_version(), k_schema_version);
    EXPECT_EQ(count_servers(s), 1);
    auto q = s.prepare("SELECT count(*) FROM exec_users");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.i64(0), 0);
    EXPECT_TRUE(s.schema_intact()) << "a migrated file's schema is the one a new file gets";
}

TEST_F(StoreTest, RollbackOnException) {
    auto s = Store::open_write(path_);
    try {
        Transaction tx(s);
        insert_server(s, "a", 10500);
        throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {}
    EXPECT_EQ(count_servers(s), 0);
    {
        Transaction tx(s);
        insert_server(s, "a", 10500);
        tx.commit();
    }
    EXPECT_EQ(count_servers(s), 1);
}

TEST_F(StoreTest, LivePortUnique) {
    auto s = Store::open_write(path_);
    insert_server(s, "a", 10500, "running");
    EXPECT_THROW(insert_server(s, "b", 10500, "starting"), Error);
    // A failed row does not hold its port.
    insert_server(s, "c", 10501, "failed");
    insert_server(s, "d", 10501, "running");
    insert_server(s, "e", 10501, "failed");
    EXPECT_EQ(count_servers(s), 4);
}

TEST_F(StoreTest, NotSqliteIsRefusedAndUntouched) {
    std::string junk = "this is not a database, just some text that is long enough to have a header......................";
    write(junk);
    try {
        Store::open_write(path_);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::failure);
        EXPECT_NE(std::string(e.what()).find("not an SQLite database"), std::string::npos) << e.what();
    }
    EXPECT_THROW(Store::open_read(path_), Error);
    EXPECT_EQ(read_file(path_), junk);
}

TEST_F(StoreTest, TruncatedIsRefusedAndUntouched) {
    {
        auto s = Store::open_write(path_);
        for (int i = 0; i < 200; ++i) s.add_event("x", "spawned", std::string(200, 'x'));
        s.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    std::string full = *read_file(path_);
    ASSERT_GT(full.size(), 8192u);
    for (std::size_t cut : {std::size_t(50), full.size() / 2, full.size() - 100}) {
        std::string part = full.substr(0, cut);
        std::remove((path_ + "-wal").c_str());
        std::remove((path_ + "-shm").c_str());
        write(part);
        try {
            auto s = Store::open_write(path_);
            FAIL() << "opened a file truncated at " << cut;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Exit::failure);
            EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
        }
        EXPECT_EQ(read_file(path_), part);
    }
}

TEST_F(StoreTest, NewerSchemaRefused) {
    {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
        sqlite3_exec(db, "CREATE TABLE t(x); PRAGMA user_version=99;", nullptr, nullptr, nullptr);
        sqlite3_close(db);
    }
    std::string before = *read_file(path_);
    try {
        Store::open_write(path_);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("schema version 99"), std::string::npos);
        EXPECT_EQ(e.code(), Exit::newer_state); // its own exit code: a supervisor restarts `serve` as the new binary
    }
    EXPECT_EQ(read_file(path_), before);
    EXPECT_THROW(Store::open_read(path_), Error);
}

// A connection opened before a newer llmctl migrated the file (a long-running serve) notices.
TEST_F(StoreTest, CheckNotNewerNoticesAMigrationByANewerLlmctl) {
    auto s = Store::open_write(path_);
    EXPECT_NO_THROW(s.check_not_newer());
    {
        auto other = Store::open_write(path_);
        other.exec(fmt::format("PRAGMA user_version={}", k_schema_version + 1).c_str());
    }
    try {
        s.check_not_newer();
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::newer_state);
    }
}

// A version-4 file (its servers' status knew no `admitting`; no memory columns) keeps its rows,
// which count no memory, and takes admitting rows once migrated.
TEST_F(StoreTest, MigratesV4ToV5KeepingRowsAndTakingAdmittingOnes) {
    {
        auto s = Store::open_write(path_);
        s.exec((std::string(k_undo_v5) + R"sql(DROP TABLE servers;
CREATE TABLE servers(name TEXT PRIMARY KEY, instance TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('starting','running','stopping','failed')), pid INTEGER, start_ticks INTEGER,
  boot_id TEXT, port INTEGER, host TEXT, argv TEXT, log_path TEXT, owner_pid INTEGER, owner_start_ticks INTEGER,
  started_at INTEGER, ready_at INTEGER, last_used INTEGER, config_hash TEXT, exit_code INTEGER, error TEXT, spec TEXT,
  max_concurrent INTEGER);
PRAGMA user_version=4;)sql")
                   .c_str());
        EXPECT_THROW(insert_server(s, "x", 10500, "admitting"), Error); // what version 4 refused
        insert_server(s, "a", 10501);
    }
    auto s = Store::open_write(path_);
    EXPECT_EQ(s.user_version(), k_schema_version);
    EXPECT_TRUE(s.schema_intact());
    EXPECT_EQ(count_servers(s), 1);
    auto q = s.prepare("SELECT memory, pool, pin FROM servers");
    ASSERT_TRUE(q.step());
    EXPECT_TRUE(q.is_null(0));
    EXPECT_TRUE(q.is_null(1));
    EXPECT_EQ(q.i64(2), 0);
    insert_server(s, "b", 10502, "admitting");
    EXPECT_EQ(count_servers(s), 2);
}

// A version-6 file gains the holds and the leases' progress; its leases stay, without progress.
TEST_F(StoreTest, MigratesV6ToV7KeepingLeasesWithoutProgress) {
    {
        auto s = Store::open_write(path_);
        s.exec("INSERT INTO leases(model, owner_pid, owner_start_ticks, owner_boot_id, state, created_at) VALUES('m', 1, 1, 'b', "
               "'waiting', 1)");
        s.exec((std::string(k_undo_v7) + "PRAGMA user_version=6;").c_str());
    }
    auto s = Store::open_write(path_);
    EXPECT_EQ(s.user_version(), k_schema_version);
    EXPECT_TRUE(s.schema_intact());
    auto q = s.prepare("SELECT COUNT(*), MAX(progress_at IS NULL), (SELECT COUNT(*) FROM holds) FROM leases");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.i64(0), 1);
    EXPECT_EQ(q.i64(1), 1);
    EXPECT_EQ(q.i64(2), 0);
}

// A version-7 file gains the request tables, and its events counted by server and kind.
TEST_F(StoreTest, MigratesV7ToV8CountingTheEventsKept) {
    {
        auto s = Store::open_write(path_);
        s.exec(k_undo_v8);
        s.exec("DELETE FROM events; INSERT INTO events(at, server, kind) VALUES(1, 'a', 'spawned'), (2, 'a', 'spawned'), (3, NULL, "
               "'rebuilt'); PRAGMA user_version=7;");
    }
    auto s = Store::open_write(path_);
    EXPECT_EQ(s.user_version(), k_schema_version);
    EXPECT_TRUE(s.schema_intact());
    auto q = s.prepare("SELECT group_concat(server || ':' || kind || '=' || n, ' ') FROM (SELECT * FROM event_totals ORDER BY 1, 2)");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.str(0), ":rebuilt=1 a:spawned=2");
    s.add_event("a", "spawned", "");
    auto n = s.prepare("SELECT n FROM event_totals WHERE server = 'a' AND kind = 'spawned'");
    ASSERT_TRUE(n.step());
    EXPECT_EQ(n.i64(0), 3);
}

// A version-5 file (before supervision) keeps its rows, without a monitor or an origin, and gains
// the exit history; a row may be `restarting` from then on.
TEST_F(StoreTest, MigratesV5ToV6KeepingRowsWithoutAMonitor) {
    {
        auto s = Store::open_write(path_);
        insert_server(s, "a", 10501);
        s.exec((std::string(k_undo_v6) + "PRAGMA user_version=5;").c_str());
    }
    auto s = Store::open_write(path_);
    EXPECT_EQ(s.user_version(), k_schema_version);
    EXPECT_TRUE(s.schema_intact());
    EXPECT_EQ(count_servers(s), 1);
    auto q = s.prepare("SELECT monitor_pid, origin, restarts, (SELECT count(*) FROM exits) FROM servers");
    ASSERT_TRUE(q.step());
    EXPECT_TRUE(q.is_null(0));
    EXPECT_TRUE(q.is_null(1));
    EXPECT_EQ(q.i64(2), 0);
    EXPECT_EQ(q.i64(3), 0);
    insert_server(s, "b", 10502, "restarting");
    EXPECT_EQ(count_servers(s), 2);
}

// A version-3 file (before servers.max_concurrent and gateways) keeps its rows; their cap is
// unknown (NULL: the acquirer's config decides).
TEST_F(StoreTest, MigratesV3ToV4KeepingRowsWithoutACap) {
    {
        auto s = Store::open_write(path_);
        insert_server(s, "a", 10501);
        s.exec((std::string(k_undo_v5) + "DROP TABLE gateways; ALTER TABLE servers DROP COLUMN max_concurrent; PRAGMA user_version=3;")
                   .c_str());
    }
    auto s = Store::open_write(path_);
    EXPECT_EQ(s.user_version(), k_schema_version);
    EXPECT_EQ(count_servers(s), 1);
    auto q = s.prepare("SELECT max_concurrent, (SELECT count(*) FROM gateways) FROM servers");
    ASSERT_TRUE(q.step());
    EXPECT_TRUE(q.is_null(0));
    EXPECT_EQ(q.i64(1), 0);
}

// A byte flipped in a table's definition (a column renamed) passes quick_check; reap --rebuild
// must still see the damage.
TEST_F(StoreTest, SchemaIntactOnlyForTheMigrationsOwnSchema) {
    auto s = Store::open_write(path_);
    EXPECT_TRUE(s.schema_intact());
    s.exec("ALTER TABLE gateways RENAME COLUMN served TO servex");
    EXPECT_FALSE(s.schema_intact());
}

// The events table keeps the newest k_events_kept rows, trimming every k_events_trim_every-th insert.
TEST_F(StoreTest, EventsAreTrimmedToTheNewest) {
    auto s = Store::open_write(path_);
    const std::int64_t total = k_events_kept + 3 * k_events_trim_every + 7;
    {
        Transaction tx(s);
        for (std::int64_t i = 1; i <= total; ++i) s.add_event("m", "test", std::to_string(i));
        tx.commit();
    }
    auto q = s.prepare("SELECT count(*), min(detail + 0), max(detail + 0) FROM events");
    ASSERT_TRUE(q.step());
    EXPECT_GE(q.i64(0), k_events_kept);
    EXPECT_LT(q.i64(0), k_events_kept + k_events_trim_every);
    EXPECT_EQ(q.i64(2), total);                // the newest is kept
    EXPECT_EQ(q.i64(1), total - q.i64(0) + 1); // and only the oldest went
}

TEST_F(StoreTest, ReadOfMissingOrEmptyIsNothing) {
    EXPECT_FALSE(Store::open_read(path_).has_value());
    write("");
    EXPECT_FALSE(Store::open_read(path_).has_value());
    // An empty file is a fresh state file for a writer.
    auto s = Store::open_write(path_);
    EXPECT_EQ(s.user_version(), k_schema_version);
}

// open_locked opens before it locks; a file replaced in between (reap --rebuild moves a damaged
// one aside under the lock) must be noticed, or the writes would go to the moved-aside file.
TEST_F(StoreTest, StillCurrentNoticesAReplacedFile) {
    Store s = Store::open_write(path_);
    EXPECT_TRUE(s.still_current());
    ASSERT_EQ(std::rename(path_.c_str(), (path_ + ".aside").c_str()), 0);
    Store fresh = Store::open_write(path_);
    EXPECT_FALSE(s.still_current());
    EXPECT_TRUE(fresh.still_current());
    Store moved = std::move(fresh);
    EXPECT_TRUE(moved.still_current());
}

TEST_F(StoreTest, OpenLockedWritesTheCurrentFile) {
    { Store s = Store::open_write(path_); }
    auto first = open_locked(dir_);
    {
        Transaction tx(first.store);
        insert_server(first.store, "a", 1);
        tx.commit();
    }
    EXPECT_TRUE(first.store.still_current());
}

// Automatic checkpoints are off (they would run inside the state lock); LockedStore checkpoints
// after releasing it, so the WAL stays near 128 frames however many writes come.
TEST_F(StoreTest, WalStaysShortAcrossManyLockedWrites) {
    { Store s = Store::open_write(path_); }
    for (int i = 0; i < 600; ++i) {
        auto locked = open_locked(dir_);
        Transaction tx(locked.store);
        locked.store.add_event("x", "test", std::string(200, 'e'));
        tx.commit();
    }
    struct stat sb {};
    ASSERT_EQ(::stat((path_ + "-wal").c_str(), &sb), 0);
    EXPECT_LT(sb.st_size, 1 << 20) << "the WAL grew to " << sb.st_size << " bytes";
}

// Many first invocations at once on a state dir without a file: each must create or find it.
// Two connections that both switched a fresh file to WAL outside the lock could deadlock in
// SQLite's rollback-mode locks, and SQLite reports that as "database is locked" at once,
// without waiting (start_race found it in CI, once in several thousand starts).
TEST_F(StoreTest, ManyFirstOpenersOfAFreshDirAllSucceed) {
    constexpr int k_threads = 16, k_rounds = 20;
    for (int round = 0; round < k_rounds; ++round) {
        std::string dir = dir_ + "/r" + std::to_string(round);
        ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
        std::atomic<int> ready{0}, failures{0};
        std::string first_error;
        std::mutex error_mutex;
        std::vector<std::thread> threads;
        for (int t = 0; t < k_threads; ++t)
            threads.emplace_back([&] {
                ready.fetch_add(1);
                while (ready.load() < k_threads) {} // start together: the race is in the first milliseconds
                try {
                    auto locked = open_locked(dir);
                    Transaction tx(locked.store);
                    locked.store.add_event("x", "test", "first");
                    tx.commit();
                } catch (const std::exception& e) {
                    failures.fetch_add(1);
                    std::lock_guard<std::mutex> g(error_mutex);
                    first_error = e.what();
                }
            });
        for (auto& t : threads) t.join();
        ASSERT_EQ(failures.load(), 0) << "round " << round << ": " << first_error;
    }
}

// The statement cache: a statement is the same prepared one the next time, reset and unbound;
// two of the same text alive at once are two statements (a nested loop over one query).
TEST_F(StoreTest, CachedStatementsComeBackResetAndNestedOnesAreDistinct) {
    Store s = Store::open_write(path_);
    s.exec("CREATE TABLE t(x INTEGER)");
    for (int i = 1; i <= 3; ++i) s.prepare("INSERT INTO t(x) VALUES(?)").bind(1, i).run();
    static const char* const k_sql = "SELECT x FROM t WHERE x >= ? ORDER BY x";
    std::vector<std::string> pairs;
    {
        auto outer = s.prepare(k_sql);
        outer.bind(1, 2);
        while (outer.step()) {
            auto inner = s.prepare(k_sql); // the cached one is busy: a fresh one
            inner.bind(1, outer.i64(0));
            while (inner.step()) pairs.push_back(fmt::format("{}{}", outer.i64(0), inner.i64(0)));
        }
    }
    EXPECT_EQ(pairs, (std::vector<std::string>{"22", "23", "33"}));
    auto again = s.prepare(k_sql); // given back half-stepped above: reset, bindings cleared (NULL: no row)
    EXPECT_FALSE(again.step());
}
