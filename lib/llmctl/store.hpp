#pragma once
// The state file: SQLite in WAL mode, schema versioned with PRAGMA user_version.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "llmctl/file_use.hpp"
#include "llmctl/lock.hpp"
#include "llmctl/units.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace llmctl {

// The hint of every "the state file is damaged" error.
extern const char* const k_hint_corrupt;

// The schema version this build writes; a newer file is refused, never downgraded.
constexpr int k_schema_version = 8;

// The events table keeps the newest k_events_kept rows; every k_events_trim_every-th insert
// deletes the older ones (ARCHITECTURE.md, "The state file").
constexpr std::int64_t k_events_kept = 10'000;
constexpr std::int64_t k_events_trim_every = 100;

class Store;

// A prepared statement; bind indexes start at 1, column indexes at 0.
class Stmt {
public:
    Stmt(Store& store, const char* sql);
    Stmt(Stmt&& o) noexcept;
    Stmt(const Stmt&) = delete;
    ~Stmt();

    Stmt& bind(int i, std::int64_t v);
    Stmt& bind(int i, const std::string& v);
    Stmt& bind(int i, const char* v) { return bind(i, std::string(v)); }
    Stmt& bind(int i, std::nullptr_t);
    Stmt& bind(int i, const std::optional<std::int64_t>& v) { return v ? bind(i, *v) : bind(i, nullptr); }

    // Steps once: true while a row is available.
    bool step();
    // Steps to completion (for statements without rows).
    void run();
    void reset();

    bool is_null(int col) const;
    std::int64_t i64(int col) const;
    std::string str(int col) const;
    std::optional<std::int64_t> opt_i64(int col) const;
    Store& store() const { return *store_; }

private:
    Store* store_;
    sqlite3_stmt* stmt_ = nullptr;
    const char* cache_key_ = nullptr; // borrowed from the store's cache: reset and given back, not finalized
};

// The prepared statements of a connection, by SQL text (StmtCache in store.cpp).
struct StmtCache;
struct StmtCacheFree {
    void operator()(StmtCache* c) const;
};

class Store {
public:
    // Opens the state file for changes, creating it (0600) and migrating the schema as needed.
    // Throws Error(failure) for a file that is not SQLite, truncated or corrupt, and
    // Error(newer_state) for one migrated by a newer llmctl (as every open does).
    static Store open_write(const std::string& path);

    // Opens an existing state file read-only; nullopt when it is missing, empty or has no schema
    // yet. A file of an earlier schema is migrated first (once, in its own transaction, over a
    // read-write connection: the one reason a reader writes).
    static std::optional<Store> open_read(const std::string& path);

    // Opens an existing state file for a change that needs no state lock: one statement that
    // SQLite serialises with the lock holders' transactions (a chat's or start's last_used) or
    // reap's checkpoint. nullopt as for open_read.
    static std::optional<Store> open_update(const std::string& path);

    Store(Store&&) noexcept;
    Store& operator=(Store&&) noexcept;
    ~Store();

    void exec(const char* sql);
    Stmt prepare(const char* sql) { return Stmt(*this, sql); }
    int user_version();
    // True when the file's schema is, to the byte, the one this version's migrations make: a
    // flipped byte in a table's definition (a column renamed) passes SQLite's quick_check.
    bool schema_intact();
    // Throws Error(newer_state) when a newer llmctl has migrated the file since this connection
    // opened it (a long-running process: `serve`).
    void check_not_newer();
    std::int64_t changes() const;
    std::int64_t last_insert_id() const;
    const std::string& path() const { return path_; }
    // Open, and not inside a transaction: fit to be kept for the next decision.
    bool idle() const;
    sqlite3* handle() const { return db_; }

    // A prepared statement of `sql` from this connection's cache (a gateway runs the same few
    // statements thousands of times a second: parsing them was much of each decision), or a
    // fresh one when the cached one is in use; `cached` says which.
    sqlite3_stmt* borrow_stmt(const char* sql, bool& cached);
    void return_stmt(const char* sql, sqlite3_stmt* stmt);

    // Runs the migrations from the file's user_version up to k_schema_version.
    void migrate();

private:
    static std::optional<Store> open_existing(const std::string& path, bool writable);

public:
    // Throws an Error for the current SQLite error, naming the state file.
    [[noreturn]] void fail(int rc, const std::string& what) const;

    // Keeps the newest `kept` rows of a table keyed by an integer id: every `every`-th insert (its
    // id a multiple) runs `delete_up_to` ("DELETE FROM t WHERE id <= ?", a literal: statements
    // are cached by their text's address) for the older ones, in the caller's transaction, so no
    // insert pays a count (events, requests).
    void trim_to_newest(const char* delete_up_to, std::int64_t newest, std::int64_t kept, std::int64_t every);
    // Appends an event row (inside the caller's transaction), trimming the oldest now and then.
    void add_event(const std::string& server, const std::string& kind, const std::string& detail);
    // Prepares add_event's statement without running it (see read_before_deciding).
    void warm_event_insert();

    // True while the path still names the file this Store opened (compared by inode, taken
    // before the open: a file replaced before or after the open both show up as a change).
    bool still_current() const;

    // A checkpoint that empties the WAL (checkpoint_truncate, waiting at most 100 ms) when this
    // connection's last commit left it at 128 frames or more. Called by LockedStore after the
    // lock is released, so the checkpoint's fsyncs never happen while the state lock is held;
    // nothing while this process leaves its checkpoints to a thread of its own.
    void checkpoint_if_large();
    // Copies the WAL back into the file without making writers wait (PASSIVE): a writer finding
    // it all copied starts the WAL over. The file's fsync is the caller's thread's only.
    void checkpoint_passive();
    // Empties the WAL: first as checkpoint_passive (the copying and its fsync while writers go
    // on), then TRUNCATE, which holds writers only for what they committed meanwhile, waiting at
    // most `wait` for them and for readers. Errors are ignored: a later checkpoint tries again.
    void checkpoint_truncate(Millis wait);

    // A long-running process (`serve`) whose decisions must never wait on a checkpoint's fsync
    // runs its checkpoints on a thread of its own (WalCheckpointer); meanwhile
    // checkpoint_if_large and reap's closing checkpoint leave the WAL to it.
    static void set_checkpoints_elsewhere(bool on);
    static bool checkpoints_elsewhere();
    // The WAL's length in frames after the latest commit of any connection of this process.
    static int wal_frames_lately();

private:
    Store(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
    void configure(bool fresh);
    void watch_wal();
    sqlite3* db_ = nullptr;
    std::string path_;
    std::uint64_t dev_ = 0, ino_ = 0; // of path_ just before the open
    int wal_frames_ = 0;              // WAL size after this connection's last commit
    std::unique_ptr<StmtCache, StmtCacheFree> stmts_;
    FileUse use_; // declared last: dropped after the connection closed
};

// BEGIN EXCLUSIVE (or DEFERRED for reads) … COMMIT; rolls back when destroyed uncommitted,
// so an exception leaves the file as it was.
class Transaction {
public:
    enum class Kind { deferred, exclusive };
    explicit Transaction(Store& store, Kind kind = Kind::exclusive);
    Transaction(const Transaction&) = delete;
    ~Transaction();
    void commit();

private:
    Store& store_;
    bool done_ = false;
};

// The outcome of looking at a state file's header without SQLite.
enum class FileCheck { missing, empty, ok };

// Checks that `path` is an SQLite file that is not truncated; throws Error(failure) otherwise.
FileCheck check_state_file(const std::string& path);

// The state lock of a state dir (state.lock, $LLMCTL_LOCK_TIMEOUT): the one way to take it.
[[nodiscard]] FileLock lock_state(const std::string& state_dir);

// Which comes first in open_locked.
enum class LockOrder {
    // The file is opened, checked and its schema parsed before the lock is taken (CPU that need
    // not be spent holding it); if the file was replaced meanwhile (reap --rebuild moves a
    // damaged one aside, under the lock) it is opened again, now inside the lock. For every
    // decision on a file that exists: start, stop, reap, slots, exec users. A file that does not
    // exist yet (or is empty) is created lock first whatever the order.
    store_first,
    // The lock, then the file. For whatever may create the file: a rebuild must re-check a lost
    // file under the lock before anything creates it (or the lost rows would never come back),
    // and `state init` and chat's sessions must not create it under a rebuild's feet.
    lock_first,
};

// The state lock plus a write connection, for one decision-and-write. When it ends, the lock is
// released first and then, outside it, the WAL is checkpointed if it has grown (automatic
// checkpoints are off: one would run inside the lock, fsyncs included).
//
// The connection of a store_first decision is kept for the next one of this process (one per
// state file): a gateway makes hundreds of decisions a second, and opening a connection, checking
// the file and parsing the schema were most of each. A kept connection is used again only while
// its file is the one at the path (a rebuild replaces it), and never in a forked child.
struct LockedStore {
    FileLock lock;
    Store store;
    bool keep = false; // give the connection back for the next decision
    LockedStore(FileLock l, Store s, bool keep_it = false) : lock(std::move(l)), store(std::move(s)), keep(keep_it) {}
    LockedStore(LockedStore&& o) noexcept : lock(std::move(o.lock)), store(std::move(o.store)), keep(std::exchange(o.keep, false)) {}
    ~LockedStore();
};
LockedStore open_locked(const std::string& state_dir, LockOrder order = LockOrder::store_first);

// Runs `look` in a read transaction on this process's kept connection of the state file (the one
// the next open_locked uses), before the lock: what it prepares and reads is then warm for the
// decision under the lock. Nothing when the file does not exist yet.
void read_before_deciding(const std::string& state_dir, const std::function<void(Store&)>& look);

// `llmctl state init`: creates the state file or migrates it to this version's schema, lock
// first (it creates); returns the schema version.
int init_state_file(const std::string& state_dir);

} // namespace llmctl
