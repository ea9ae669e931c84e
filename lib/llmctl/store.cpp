#include "llmctl/store.hpp"

#include "llmctl/paths.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/fd.hpp"
#include "llmctl/file_use.hpp"
#include "llmctl/process.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace llmctl {

const char* const k_hint_corrupt = "the file is kept as it is; llmctl reap --rebuild moves it aside (with its -wal and -shm) "
                                   "and rebuilds it from the running servers";

namespace {

// Each step takes the schema from version i to i+1.
const char* const k_migrations[] = {
    // v0 -> v1
    R"sql(
CREATE TABLE servers(
  name TEXT PRIMARY KEY,
  instance TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('starting','running','stopping','failed')),
  pid INTEGER,
  start_ticks INTEGER,
  boot_id TEXT,
  port INTEGER,
  host TEXT,
  argv TEXT,
  log_path TEXT,
  owner_pid INTEGER,
  owner_start_ticks INTEGER,
  started_at INTEGER,
  ready_at INTEGER,
  last_used INTEGER,
  config_hash TEXT,
  exit_code INTEGER,
  error TEXT
);
CREATE UNIQUE INDEX servers_live_port ON servers(port) WHERE status IN ('starting','running','stopping');
CREATE TABLE leases(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  model TEXT NOT NULL,
  owner_pid INTEGER NOT NULL,
  owner_start_ticks INTEGER NOT NULL,
  owner_boot_id TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('waiting','active')),
  created_at INTEGER NOT NULL,
  acquired_at INTEGER
);
CREATE INDEX leases_model ON leases(model, state, id);
CREATE TABLE events(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  server TEXT,
  kind TEXT NOT NULL,
  detail TEXT
);
CREATE TABLE sessions(
  name TEXT PRIMARY KEY,
  model TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE messages(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,
  role TEXT NOT NULL,
  content TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX messages_session ON messages(session, id);
)sql",
    // v1 -> v2: `llmctl exec` users of a server (lease-like: owned by the exec's identity).
    R"sql(
CREATE TABLE exec_users(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  model TEXT NOT NULL,
  instance TEXT NOT NULL,
  owner_pid INTEGER NOT NULL,
  owner_start_ticks INTEGER NOT NULL,
  owner_boot_id TEXT NOT NULL,
  stops_server INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE INDEX exec_users_instance ON exec_users(instance);
)sql",
    // v2 -> v3: what a server was started from (JSON: command template, health, cwd, env), so a
    // running ad-hoc server can be used, restarted and probed by name.
    R"sql(
ALTER TABLE servers ADD COLUMN spec TEXT;
)sql",
    // v3 -> v4: the slot cap a server was started with (NULL in a row of an earlier llmctl or a
    // rebuilt one: the acquirer's config decides), and the running gateways (`llmctl serve`),
    // owned by their process identity like leases.
    R"sql(
ALTER TABLE servers ADD COLUMN max_concurrent INTEGER;
CREATE TABLE gateways(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  url TEXT NOT NULL,
  owner_pid INTEGER NOT NULL,
  owner_start_ticks INTEGER NOT NULL,
  owner_boot_id TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  in_flight INTEGER NOT NULL DEFAULT 0,
  served INTEGER NOT NULL DEFAULT 0
);
)sql",
    // v4 -> v5: memory pools (llmctl.toml(5), MEMORY). A server row may be `admitting`: a start
    // that claimed its name and memory and waits for its victims to exit (no process yet, so no
    // pid). A row counts `memory` bytes in `pool` (how it was known: memory_source). The largest
    // footprint measured per model and config, and the starts waiting for memory, per pool, in
    // order. SQLite cannot change a CHECK constraint in place: the table is made anew.
    R"sql(
CREATE TABLE servers_v5(
  name TEXT PRIMARY KEY,
  instance TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('admitting','starting','running','stopping','failed')),
  pid INTEGER,
  start_ticks INTEGER,
  boot_id TEXT,
  port INTEGER,
  host TEXT,
  argv TEXT,
  log_path TEXT,
  owner_pid INTEGER,
  owner_start_ticks INTEGER,
  started_at INTEGER,
  ready_at INTEGER,
  last_used INTEGER,
  config_hash TEXT,
  exit_code INTEGER,
  error TEXT,
  spec TEXT,
  max_concurrent INTEGER,
  pool TEXT,
  memory INTEGER,
  memory_source TEXT CHECK (memory_source IN ('declared','estimated','measured')),
  pin INTEGER NOT NULL DEFAULT 0
);
INSERT INTO servers_v5(name, instance, status, pid, start_ticks, boot_id, port, host, argv, log_path, owner_pid, owner_start_ticks,
                       started_at, ready_at, last_used, config_hash, exit_code, error, spec, max_concurrent)
  SELECT name, instance, status, pid, start_ticks, boot_id, port, host, argv, log_path, owner_pid, owner_start_ticks,
         started_at, ready_at, last_used, config_hash, exit_code, error, spec, max_concurrent FROM servers;
DROP TABLE servers;
ALTER TABLE servers_v5 RENAME TO servers;
CREATE UNIQUE INDEX servers_live_port ON servers(port) WHERE status IN ('starting','running','stopping');
CREATE TABLE footprints(
  model TEXT NOT NULL,
  config_hash TEXT NOT NULL,
  measured INTEGER NOT NULL,
  measured_at INTEGER NOT NULL,
  PRIMARY KEY(model, config_hash)
);
CREATE TABLE admissions(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  pool TEXT NOT NULL,
  model TEXT NOT NULL,
  need INTEGER NOT NULL,
  owner_pid INTEGER NOT NULL,
  owner_start_ticks INTEGER NOT NULL,
  owner_boot_id TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX admissions_pool ON admissions(pool, id);
)sql",
    // v5 -> v6: supervision (issue 20). A row names the monitor its server runs under, the config
    // file it came from (origin) and the policy restarts that led to it; it may be `restarting`
    // (a policy restart waiting for its delay: the dead server's pid, the restarter as owner).
    // Exits are a history of their own, kept after the rows go (`exits`, bounded).
    R"sql(
CREATE TABLE servers_v6(
  name TEXT PRIMARY KEY,
  instance TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('admitting','starting','running','stopping','failed','restarting')),
  pid INTEGER,
  start_ticks INTEGER,
  boot_id TEXT,
  port INTEGER,
  host TEXT,
  argv TEXT,
  log_path TEXT,
  owner_pid INTEGER,
  owner_start_ticks INTEGER,
  started_at INTEGER,
  ready_at INTEGER,
  last_used INTEGER,
  config_hash TEXT,
  exit_code INTEGER,
  error TEXT,
  spec TEXT,
  max_concurrent INTEGER,
  pool TEXT,
  memory INTEGER,
  memory_source TEXT CHECK (memory_source IN ('declared','estimated','measured')),
  pin INTEGER NOT NULL DEFAULT 0,
  monitor_pid INTEGER,
  monitor_start_ticks INTEGER,
  origin TEXT,
  restarts INTEGER NOT NULL DEFAULT 0
);
INSERT INTO servers_v6(name, instance, status, pid, start_ticks, boot_id, port, host, argv, log_path, owner_pid, owner_start_ticks,
                       started_at, ready_at, last_used, config_hash, exit_code, error, spec, max_concurrent, pool, memory,
                       memory_source, pin)
  SELECT name, instance, status, pid, start_ticks, boot_id, port, host, argv, log_path, owner_pid, owner_start_ticks,
         started_at, ready_at, last_used, config_hash, exit_code, error, spec, max_concurrent, pool, memory,
         memory_source, pin FROM servers;
DROP TABLE servers;
ALTER TABLE servers_v6 RENAME TO servers;
CREATE UNIQUE INDEX servers_live_port ON servers(port) WHERE status IN ('starting','running','stopping');
CREATE TABLE exits(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  instance TEXT NOT NULL UNIQUE,
  pid INTEGER NOT NULL,
  at INTEGER NOT NULL,
  code INTEGER,
  signal INTEGER,
  core INTEGER NOT NULL DEFAULT 0,
  oom INTEGER NOT NULL DEFAULT 0,
  known INTEGER NOT NULL,
  cause TEXT NOT NULL,
  action TEXT
);
CREATE INDEX exits_name ON exits(name, at);
)sql",
    // v6 -> v7: the rest of supervision. A model `stop` holds down (restart = "always" or preload)
    // until a start or `apply`; and when a lease's holder last received a byte of its answer
    // (written at most once a second, for a model with a probe), so a probe that finds no free
    // slot can tell a busy server from a wedged one.
    R"sql(
CREATE TABLE holds(
  name TEXT PRIMARY KEY,
  origin TEXT,
  at INTEGER NOT NULL
);
ALTER TABLE leases ADD COLUMN progress_at INTEGER;
)sql",
    // v7 -> v8: what is seen (issue 22). Events counted by server and kind for good (the events
    // table keeps only the newest), and the requests of chat and serve: the newest kept one by
    // one, every one added to its model's totals (Prometheus counters never go down).
    R"sql(
CREATE TABLE event_totals(
  server TEXT NOT NULL,
  kind TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY(server, kind)
) WITHOUT ROWID;
INSERT INTO event_totals(server, kind, n) SELECT COALESCE(server, ''), kind, COUNT(*) FROM events GROUP BY 1, 2;
CREATE TABLE requests(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  model TEXT NOT NULL,
  via TEXT NOT NULL,
  status INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  queue_ms INTEGER NOT NULL,
  ttft_ms INTEGER,
  duration_ms INTEGER NOT NULL,
  tokens_in INTEGER,
  tokens_out INTEGER NOT NULL,
  counted INTEGER NOT NULL
);
CREATE TABLE request_totals(
  model TEXT NOT NULL,
  via TEXT NOT NULL,
  status INTEGER NOT NULL,
  requests INTEGER NOT NULL,
  tokens_in INTEGER NOT NULL,
  tokens_out INTEGER NOT NULL,
  queue_ms INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  PRIMARY KEY(model, via, status)
) WITHOUT ROWID;
)sql",
};
static_assert(sizeof(k_migrations) / sizeof(k_migrations[0]) == k_schema_version);

// A file migrated by a newer llmctl: its own exit code, so that a supervisor (systemd) restarts
// `serve` as the new binary rather than counting a failure.
[[noreturn]] void refuse_newer(const std::string& path, int v) {
    throw Error(Exit::newer_state,
                fmt::format("state file {} has schema version {}, newer than this llmctl understands ({})", path, v, k_schema_version),
                "a newer llmctl uses this state dir: run that one (restart a long-running llmctl serve), or use another --state-dir");
}

std::uint32_t be32(const unsigned char* p) {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

} // namespace

namespace {

// A descriptor of the file `path` names, for check_state_file (file_use.hpp).
class CheckFd {
public:
    explicit CheckFd(const std::string& path) : d_(open_for_check(path.c_str())) {}
    ~CheckFd() { close_unless_in_use(d_); }
    CheckFd(const CheckFd&) = delete;
    int get() const { return d_.fd; }

private:
    CheckDescriptor d_;
};

} // namespace

FileCheck check_state_file(const std::string& path) {
    CheckFd check(path);
    int fd = check.get();
    if (fd < 0) {
        if (errno == ENOENT) return FileCheck::missing;
        throw_sys("open", path, errno);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_sys("fstat", path, errno);
    if (!S_ISREG(st.st_mode)) throw Error(Exit::failure, fmt::format("state file {} is not a regular file", path));
    if (st.st_size == 0) return FileCheck::empty;
    unsigned char h[100] = {};
    ssize_t n = ::pread(fd, h, sizeof h, 0);
    if (n < 16 || std::memcmp(h, "SQLite format 3", 16) != 0)
        throw Error(Exit::failure, fmt::format("state file {} is not an SQLite database", path), k_hint_corrupt);
    if (n < 100) throw Error(Exit::failure, fmt::format("state file {} is truncated ({} bytes)", path, st.st_size), k_hint_corrupt);
    std::uint32_t page_size = (std::uint32_t(h[16]) << 8) | h[17];
    if (page_size == 1) page_size = 65536;
    std::uint32_t pages = be32(h + 28);
    // The in-header size is valid when its change counter matches (SQLite >= 3.7.0 keeps both).
    bool size_valid = pages > 0 && std::memcmp(h + 24, h + 92, 4) == 0;
    if (page_size < 512 || (page_size & (page_size - 1)) != 0)
        throw Error(Exit::failure, fmt::format("state file {} has a corrupt header (page size {})", path, page_size), k_hint_corrupt);
    // A checkpoint copies WAL pages into the file in page order, header first, and empties the
    // WAL last, so while a non-empty -wal exists the file may briefly be shorter than its header
    // says. Only a file without WAL content is judged by its size (SQLite itself reports
    // corruption otherwise). The order of the reads matters: header, then WAL, then size. A WAL
    // seen empty after the header was read means the checkpoint that wrote that header has
    // finished, so the size read last covers every page it names; size first would let a
    // checkpoint that ends in between look like a truncation (found by the soak: a reap refused
    // a sound file). The file never shrinks (no auto-vacuum), so no later writer undoes this.
    if (!size_valid) return FileCheck::ok;
    struct stat wal {};
    if (::stat((path + "-wal").c_str(), &wal) == 0 && wal.st_size > 0) return FileCheck::ok;
    if (::fstat(fd, &st) != 0) throw_sys("fstat", path, errno);
    if (static_cast<std::uint64_t>(st.st_size) >= std::uint64_t(page_size) * pages) return FileCheck::ok;
    throw Error(Exit::failure,
                fmt::format("state file {} is truncated: {} bytes, the header says {} pages of {}", path, st.st_size, pages, page_size),
                k_hint_corrupt);
}

// --- Stmt ---

Stmt::Stmt(Store& store, const char* sql) : store_(&store) {
    bool cached = false;
    stmt_ = store.borrow_stmt(sql, cached);
    if (cached) cache_key_ = sql;
}
Stmt::Stmt(Stmt&& o) noexcept : store_(o.store_), stmt_(std::exchange(o.stmt_, nullptr)), cache_key_(o.cache_key_) {}
Stmt::~Stmt() {
    if (!stmt_) return;
    if (cache_key_)
        store_->return_stmt(cache_key_, stmt_);
    else
        sqlite3_finalize(stmt_);
}

// --- the statement cache ---

// By the address of the SQL text (a literal, nearly always) and checked against the text itself;
// at most k_max statements (SQL made at run time would otherwise fill it).
struct StmtCache {
    static constexpr std::size_t k_max = 96;
    struct Entry {
        std::string sql;
        sqlite3_stmt* stmt = nullptr;
        bool busy = false;
    };
    std::unordered_map<const char*, Entry> by_text;
    ~StmtCache() {
        for (auto& [k, e] : by_text) sqlite3_finalize(e.stmt);
    }
};

void StmtCacheFree::operator()(StmtCache* c) const { delete c; }

sqlite3_stmt* Store::borrow_stmt(const char* sql, bool& cached) {
    cached = false;
    if (!stmts_) stmts_.reset(new StmtCache);
    auto it = stmts_->by_text.find(sql);
    if (it != stmts_->by_text.end() && !it->second.busy && it->second.sql == sql) {
        it->second.busy = true;
        cached = true;
        return it->second.stmt;
    }
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) fail(rc, "prepare");
    bool room = it == stmts_->by_text.end() ? stmts_->by_text.size() < StmtCache::k_max : !it->second.busy;
    if (room && stmt) {
        auto& e = stmts_->by_text[sql];
        sqlite3_finalize(e.stmt); // another text at the same address (SQL made at run time)
        e = StmtCache::Entry{sql, stmt, true};
        cached = true;
    }
    return stmt;
}

void Store::return_stmt(const char* sql, sqlite3_stmt* stmt) {
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (stmts_)
        if (auto it = stmts_->by_text.find(sql); it != stmts_->by_text.end() && it->second.stmt == stmt) {
            it->second.busy = false;
            return;
        }
    sqlite3_finalize(stmt);
}

Stmt& Stmt::bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
}
Stmt& Stmt::bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
}
Stmt& Stmt::bind(int i, std::nullptr_t) {
    sqlite3_bind_null(stmt_, i);
    return *this;
}
bool Stmt::step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    store_->fail(rc, "step");
}
void Stmt::run() {
    while (step()) {}
}
void Stmt::reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}
bool Stmt::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
std::int64_t Stmt::i64(int col) const { return sqlite3_column_int64(stmt_, col); }
std::string Stmt::str(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
}
std::optional<std::int64_t> Stmt::opt_i64(int col) const {
    if (is_null(col)) return std::nullopt;
    return i64(col);
}

// --- Store ---

namespace {
std::atomic<bool> g_checkpoints_elsewhere{false};
std::atomic<int> g_wal_frames{0}; // the WAL's length after this process's latest commit
} // namespace

Store::Store(Store&& o) noexcept
    : db_(std::exchange(o.db_, nullptr)), path_(std::move(o.path_)), dev_(o.dev_), ino_(o.ino_), wal_frames_(o.wal_frames_),
      stmts_(std::move(o.stmts_)), use_(std::move(o.use_)) {
    watch_wal();
}
Store& Store::operator=(Store&& o) noexcept {
    if (this != &o) {
        stmts_.reset(); // (its statements are finalized before their connection closes)
        if (db_) sqlite3_close_v2(db_);
        db_ = std::exchange(o.db_, nullptr);
        stmts_ = std::move(o.stmts_);
        path_ = std::move(o.path_);
        dev_ = o.dev_;
        ino_ = o.ino_;
        use_ = std::move(o.use_);
        wal_frames_ = o.wal_frames_;
        watch_wal();
    }
    return *this;
}

// The WAL hook points at this object, so it is registered again whenever the Store moves.
void Store::watch_wal() {
    if (!db_) return;
    sqlite3_wal_hook(
        db_,
        [](void* self, sqlite3*, const char*, int frames) {
            static_cast<Store*>(self)->wal_frames_ = frames;
            g_wal_frames.store(frames, std::memory_order_relaxed);
            return SQLITE_OK;
        },
        this);
}

void Store::set_checkpoints_elsewhere(bool on) { g_checkpoints_elsewhere = on; }
bool Store::checkpoints_elsewhere() { return g_checkpoints_elsewhere; }
int Store::wal_frames_lately() { return g_wal_frames.load(std::memory_order_relaxed); }

void Store::checkpoint_if_large() {
    if (!db_ || wal_frames_ < 128 || checkpoints_elsewhere()) return;
    wal_frames_ = 0;
    checkpoint_truncate(Millis{100});
}

void Store::checkpoint_passive() {
    if (db_) sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
}

void Store::checkpoint_truncate(Millis wait) {
    if (!db_) return;
    // TRUNCATE, not PASSIVE alone: a passive checkpoint leaves the frames in the WAL, and the
    // next invocation's fresh connection, which rebuilds the WAL index, cannot tell they were
    // copied, so the WAL would never restart. PASSIVE first all the same: TRUNCATE holds writers
    // while it copies and syncs the file, and after PASSIVE there is next to nothing left to copy.
    checkpoint_passive();
    sqlite3_busy_timeout(db_, static_cast<int>(wait.count()));
    sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    sqlite3_busy_timeout(db_, 10'000);
}

namespace {

// The kept write connection of each state file (LockedStore::keep), with the process that opened
// it. Never destroyed: at exit the connections close with the process.
struct KeptStore {
    pid_t pid = 0;
    std::unique_ptr<Store> store;
};
std::mutex g_kept_mu;
std::map<std::string, KeptStore>& kept_stores() {
    static auto* kept = new std::map<std::string, KeptStore>;
    return *kept;
}

// The kept connection to `db`, if there is one of this process.
std::optional<Store> take_kept(const std::string& db) {
    std::lock_guard<std::mutex> g(g_kept_mu);
    auto it = kept_stores().find(db);
    if (it == kept_stores().end() || !it->second.store) return std::nullopt;
    if (it->second.pid != ::getpid()) { // a parent's, inherited by fork: neither used nor closed here
        (void)it->second.store.release();
        kept_stores().erase(it);
        return std::nullopt;
    }
    std::optional<Store> s(std::move(*it->second.store));
    it->second.store.reset();
    return s;
}

void give_back(Store&& s) {
    std::lock_guard<std::mutex> g(g_kept_mu);
    KeptStore& k = kept_stores()[s.path()];
    if (k.store && k.pid == ::getpid()) return; // one is kept already: this one closes
    k.pid = ::getpid();
    k.store = std::make_unique<Store>(std::move(s));
}

} // namespace

bool Store::idle() const { return db_ && sqlite3_get_autocommit(db_) != 0; }

LockedStore::~LockedStore() {
    lock.release();
    store.checkpoint_if_large();
    if (keep && store.idle()) give_back(std::move(store));
}

bool Store::still_current() const {
    struct stat sb {};
    return ::stat(path_.c_str(), &sb) == 0 && sb.st_dev == dev_ && sb.st_ino == ino_;
}

FileLock lock_state(const std::string& state_dir) { return FileLock::acquire(state_lock_path(state_dir), lock_timeout()); }

void read_before_deciding(const std::string& state_dir, const std::function<void(Store&)>& look) {
    std::string db = state_db_path(state_dir);
    if (check_state_file(db) != FileCheck::ok) return;
    std::optional<Store> kept = take_kept(db);
    Store store = kept ? std::move(*kept) : Store::open_write(db);
    {
        Transaction snap(store, Transaction::Kind::deferred);
        look(store);
    }
    if (store.idle()) give_back(std::move(store));
}

int init_state_file(const std::string& state_dir) { return open_locked(state_dir, LockOrder::lock_first).store.user_version(); }

LockedStore open_locked(const std::string& state_dir, LockOrder order) {
    std::string db = state_db_path(state_dir);
    // A file not yet created is created under the lock: concurrent creators that each switch a
    // fresh file to WAL can deadlock in SQLite's rollback-mode locks, which it reports as
    // "database is locked" at once, without waiting (start_race, round 1, found it in CI).
    if (order == LockOrder::lock_first || check_state_file(db) != FileCheck::ok) {
        FileLock lock = lock_state(state_dir);
        return LockedStore{std::move(lock), Store::open_write(db)};
    }
    // This process's turn first: the threads of a gateway then hold one connection at a time
    // between opening the file and the lock, not one each.
    auto turn = FileLock::queue_in_process(state_lock_path(state_dir), lock_timeout());
    std::optional<Store> kept = take_kept(db);
    Store store = kept ? std::move(*kept) : Store::open_write(db);
    if (!kept) store.exec("SELECT 1 FROM sqlite_master LIMIT 0"); // parse the schema now, not under the lock
    FileLock lock = FileLock::acquire_file(state_lock_path(state_dir), lock_timeout(), std::move(turn));
    if (!store.still_current())
        store = Store::open_write(db);
    else if (kept)
        store.check_not_newer(); // a newer llmctl may have migrated it since (as every open checks)
    return LockedStore{std::move(lock), std::move(store), true};
}
Store::~Store() {
    stmts_.reset();
    if (db_) sqlite3_close_v2(db_);
}

void Store::fail(int rc, const std::string& what) const {
    int primary = rc & 0xff;
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
        throw Error(Exit::failure, fmt::format("state file {} is corrupt ({}: {})", path_, what, msg), k_hint_corrupt);
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
        throw Error(Exit::timeout, fmt::format("state file {} is busy ({}: {})", path_, what, msg), "another llmctl holds it; try again");
    if (primary == SQLITE_CONSTRAINT) throw Error(Exit::failure, fmt::format("state file {}: constraint failed: {}", path_, msg));
    // A full filesystem is SQLITE_FULL on most writes, but SQLITE_IOERR where SQLite extends the
    // -shm or -wal file (found under ASan in CI: "disk I/O error" on a full tmpfs): the errno says.
    const int sys_errno = db_ ? sqlite3_system_errno(db_) : 0;
    if (primary == SQLITE_FULL || (primary == SQLITE_IOERR && (sys_errno == ENOSPC || sys_errno == EDQUOT)))
        throw StateWriteError(fmt::format("state file {}: disk full ({})", path_, primary == SQLITE_FULL ? msg : std::strerror(sys_errno)),
                              "free some space (df -h) and retry");
    if (primary == SQLITE_IOERR)
        throw StateWriteError(
            fmt::format("state file {}: {}: {}", path_, what, msg),
            "the file is unchanged (the write was rolled back); check free space (df) and the file size limit (ulimit -f)");
    throw Error(Exit::failure, fmt::format("state file {}: {}: {}", path_, what, msg));
}

void Store::exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) fail(rc, "exec");
}

int Store::user_version() {
    Stmt s(*this, "PRAGMA user_version");
    return s.step() ? static_cast<int>(s.i64(0)) : 0;
}

namespace {

// The schema (type, name, table, SQL text) as rows, in name order.
std::vector<std::string> schema_of(sqlite3* db) {
    std::vector<std::string> out;
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT type, name, tbl_name, ifnull(sql, '') FROM sqlite_master ORDER BY name", -1, &q, nullptr) !=
        SQLITE_OK)
        return out;
    while (sqlite3_step(q) == SQLITE_ROW) {
        std::string row;
        for (int c = 0; c < 4; ++c) {
            auto* p = reinterpret_cast<const char*>(sqlite3_column_text(q, c));
            row += p ? p : "";
            row += '\x1f';
        }
        out.push_back(std::move(row));
    }
    sqlite3_finalize(q);
    return out;
}

} // namespace

bool Store::schema_intact() {
    if (user_version() != k_schema_version) return false;
    sqlite3* fresh = nullptr;
    bool built = sqlite3_open_v2(":memory:", &fresh, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, nullptr) == SQLITE_OK;
    for (const char* step : k_migrations) built = built && sqlite3_exec(fresh, step, nullptr, nullptr, nullptr) == SQLITE_OK;
    bool same = built && schema_of(fresh) == schema_of(db_);
    sqlite3_close(fresh);
    return same;
}

void Store::check_not_newer() {
    if (int v = user_version(); v > k_schema_version) refuse_newer(path_, v);
}

std::int64_t Store::changes() const { return sqlite3_changes64(db_); }
std::int64_t Store::last_insert_id() const { return sqlite3_last_insert_rowid(db_); }

void Store::configure(bool fresh) {
    sqlite3_busy_timeout(db_, 10'000);
    // Short invocations must not pay a checkpoint and fsync on close; reap checkpoints.
    sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    if (fresh) exec("PRAGMA journal_mode=WAL");
    // Every invocation is a new connection, and the first connection to open a WAL database
    // rebuilds its index by reading the whole WAL, so the WAL is kept short: LockedStore
    // checkpoints once it holds 128 pages (512 KiB), after releasing the state lock; SQLite's own
    // automatic checkpoint (at 1000 pages, inside the committing transaction's lock) is off.
    exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=0");
    watch_wal();
}

void Store::migrate() {
    int v = user_version();
    if (v == k_schema_version) return;
    if (v < 0) // only a damaged file says so (found by fuzz_state: it indexed k_migrations[-N])
        throw Error(Exit::failure, fmt::format("state file {} has an invalid schema version {}", path_, v), k_hint_corrupt);
    if (v > k_schema_version) refuse_newer(path_, v);
    Transaction tx(*this);
    v = user_version(); // another process may have migrated while we waited
    if (v > k_schema_version) refuse_newer(path_, v);
    if (v < 0)
        throw Error(Exit::failure, fmt::format("state file {} changed to schema version {} while opening it", path_, v),
                    "another llmctl version uses this state dir; use one version, or another --state-dir");
    for (; v < k_schema_version; ++v) {
        exec(k_migrations[v]);
        exec(fmt::format("PRAGMA user_version={}", v + 1).c_str());
    }
    tx.commit();
}

namespace {

// Before SQLite's first use in the process: no global allocation statistics, whose mutex every
// allocation of every connection took (a gateway's threads contended on it).
void configure_sqlite_once() {
    static const int done = [] { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }();
    (void)done;
}

} // namespace

Store Store::open_write(const std::string& path) {
    configure_sqlite_once();
    FileCheck fc = check_state_file(path);
    if (fc == FileCheck::missing) {
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) throw_sys("open", path, errno);
        ::close(fd); // (no connection of this process can hold a lock on a file just created)
    }
    struct stat before {};
    (void)::stat(path.c_str(), &before);
    FileUse use(before.st_dev, before.st_ino);
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, nullptr);
    Store s(db, path);
    s.use_ = std::move(use);
    s.dev_ = before.st_dev;
    s.ino_ = before.st_ino;
    if (rc != SQLITE_OK) s.fail(rc, "open");
    s.configure(fc != FileCheck::ok);
    s.migrate();
    // SQLite quietly opens read-only a file it may not write (permissions) or whose header asks
    // for a newer file format (a damaged byte 18: found by the corruption test); every change
    // would then fail with "attempt to write a readonly database". Say so now, clearly.
    if (sqlite3_db_readonly(s.db_, "main") == 1)
        throw Error(Exit::failure,
                    fmt::format("state file {} can only be opened read-only{}", path,
                                ::access(path.c_str(), W_OK) != 0 ? "" : " (its header is damaged)"),
                    ::access(path.c_str(), W_OK) != 0 ? "this user may not write it; check its owner and mode, or use another --state-dir"
                                                      : k_hint_corrupt);
    return s;
}

std::optional<Store> Store::open_read(const std::string& path) { return open_existing(path, false); }

std::optional<Store> Store::open_update(const std::string& path) { return open_existing(path, true); }

std::optional<Store> Store::open_existing(const std::string& path, bool writable) {
    configure_sqlite_once();
    FileCheck fc = check_state_file(path);
    if (fc != FileCheck::ok) return std::nullopt;
    struct stat before {};
    (void)::stat(path.c_str(), &before);
    FileUse use(before.st_dev, before.st_ino);
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, (writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOFOLLOW, nullptr);
    Store s(db, path);
    s.use_ = std::move(use);
    s.dev_ = before.st_dev;
    s.ino_ = before.st_ino;
    if (rc != SQLITE_OK) s.fail(rc, "open");
    s.configure(false);
    int v = s.user_version();
    if (v > k_schema_version) refuse_newer(path, v);
    if (v == 0) return std::nullopt; // nothing written yet
    if (v < k_schema_version) {      // a file of an earlier llmctl: one schema change, once
        if (!writable) return open_existing(path, true);
        s.migrate();
    }
    return s;
}

namespace {
const char* const k_insert_event = "INSERT INTO events(at, server, kind, detail) VALUES(?,?,?,?)";
} // namespace

const char* const k_count_event =
    "INSERT INTO event_totals(server, kind, n) VALUES(?,?,1) ON CONFLICT(server, kind) DO UPDATE SET n = n + 1";

void Store::warm_event_insert() {
    Stmt s(*this, k_insert_event);
    Stmt t(*this, k_count_event);
}

void Store::add_event(const std::string& server, const std::string& kind, const std::string& detail) {
    Stmt s(*this, k_insert_event);
    s.bind(1, now_ms()).bind(2, server).bind(3, kind).bind(4, detail).run();
    const std::int64_t id = last_insert_id();
    Stmt(*this, k_count_event).bind(1, server).bind(2, kind).run();
    trim_to_newest("DELETE FROM events WHERE id <= ?", id, k_events_kept, k_events_trim_every);
}

void Store::trim_to_newest(const char* delete_up_to, std::int64_t newest, std::int64_t kept, std::int64_t every) {
    if (newest % every != 0 || newest <= kept) return;
    prepare(delete_up_to).bind(1, newest - kept).run();
}

// --- Transaction ---

Transaction::Transaction(Store& store, Kind kind) : store_(store) {
    store_.exec(kind == Kind::exclusive ? "BEGIN EXCLUSIVE" : "BEGIN DEFERRED");
}

void Transaction::commit() {
    store_.exec("COMMIT");
    done_ = true;
}

Transaction::~Transaction() {
    if (!done_) sqlite3_exec(store_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

} // namespace llmctl
