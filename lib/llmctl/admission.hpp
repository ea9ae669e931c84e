#pragma once
// Memory pools (llmctl.toml(5), MEMORY; ARCHITECTURE.md, "Admission"): what a start needs, what
// its pool holds, and, under the state lock, whether the start fits, whom it evicts, or why it
// waits.

#include "llmctl/config.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace llmctl {

// What a model's server is counted as: the declared or estimated size, or the largest measured
// for that model and config, whichever is larger.
struct Footprint {
    std::uint64_t bytes = 0;
    std::string source; // "declared", "estimated" or "measured"
};

// Before the lock: the declared or estimated footprint of `m` (`expanded_argv`: its command with
// the placeholders filled in; an estimate reads GGUF headers, which is not done holding the lock).
// Throws Error(config) at the memory key when an estimate cannot be made, or when the model is
// larger than its whole pool (`budget`).
Footprint expected_footprint(const ModelConfig& m, const std::vector<std::string>& expanded_argv, std::uint64_t budget,
                             const std::string& pool);
// Under the lock: `f`, or the largest footprint measured for the model and config when larger.
Footprint with_measured(Store& store, const ModelConfig& m, Footprint f);

// What `config check` finds of the pools beyond the syntax: a model whose memory = "auto" cannot
// be estimated (its GGUF file missing or unreadable) or is larger than its whole pool (one
// "FILE:LINE:COL: …" line each). Starting such a model fails with the same words.
std::vector<std::string> check_pool_memory(const Config& cfg);

// A pool's budget: its memory, or for "auto" the GPU's total (nvidia-smi) or MemTotal.
std::uint64_t pool_budget(const PoolConfig& p);

// Whether processes live, each looked at once (a decision asks about the same gateway many times).
// A start fills it just before it takes the lock (load_pool on a reader), so that the look inside
// the lock reads /proc only for processes it did not see then. A process seen alive may have died
// since: it counts as holding memory, or as using its server, a moment longer, which can only make
// a start evict less or wait a round more, never overcommit. One seen dead stays dead.
class Liveness {
public:
    bool operator()(const Identity& id);

private:
    std::map<pid_t, std::pair<Identity, bool>> seen_;
};

// One server (or admitting start) counted in a pool.
struct PoolHolder {
    ServerRow row;
    std::uint64_t memory = 0;
    int in_flight = 0; // active leases with a live owner
    int waiting = 0;   // waiting leases with a live owner
    int exec_users = 0;
    bool pinned = false;
    // Running, and nothing uses or protects it: a victim an admission may pick.
    bool evictable() const { return row.status == "running" && in_flight == 0 && waiting == 0 && exec_users == 0 && !pinned; }
};

struct PoolState {
    std::string name;
    std::uint64_t budget = 0;
    std::vector<PoolHolder> holders; // servers whose processes exist, and admitting starts whose owner lives
    std::uint64_t used() const;
};

// Under the lock (the caller's transaction): the pool's holders. Rows of dead admitting starts
// are not counted (start and reap delete them). `config` decides `pin` for models it holds.
PoolState load_pool(Store& store, const std::string& pool, std::uint64_t budget, const Config* config, Liveness& alive);

struct AdmissionPlan {
    enum class Kind { fits, evict, wait };
    Kind kind = Kind::fits;
    std::vector<ServerRow> victims; // evict: least recently used first
    std::string holders;            // wait: who holds the memory ("qwen32 (18.0 GiB) is serving 2 requests")
};

// Whether `need` bytes fit in the pool, by evicting the least recently used evictable servers
// if need be; never a partial eviction: a start that cannot fit even so evicts nothing.
AdmissionPlan plan_admission(const PoolState& pool, std::uint64_t need);

// "9.0 GiB", "512 MiB": sizes in admission messages.
std::string format_memory(std::uint64_t bytes);

// The admission queue of a pool (FIFO by arrival): a start that must wait keeps a place, owned
// by its process identity like a lease. Under the lock.
struct AdmissionQueue {
    struct Place {
        std::int64_t id;
        std::string pool, model;
        pid_t owner;
    };
    // The places of dead owners in `pool` ("": every pool), dropped unless `keep` (reap --dry-run).
    static std::vector<Place> reclaim_dead(Store& store, const std::string& pool, bool keep = false);
    // Our place (0: none).
    static std::int64_t place_of(Store& store, const std::string& model, const Identity& me);
    // The first place in the queue (0: empty).
    static std::int64_t head(Store& store, const std::string& pool);
    static std::int64_t join(Store& store, const std::string& pool, const std::string& model, std::uint64_t need, const Identity& me);
    static void leave(Store& store, const std::string& model, const Identity& me);
    // Places ahead of ours.
    static int ahead_of(Store& store, const std::string& pool, std::int64_t id);
};

// One pool as `ps --pools` shows it: from a reader's snapshot, without the lock.
struct PoolReport {
    std::string name, kind;
    std::optional<std::uint64_t> budget; // nullopt: a pool the config no longer has
    std::uint64_t used = 0;              // servers whose processes exist
    std::uint64_t reserved = 0;          // admitting starts (waiting for their victims to exit)
    int queued = 0;                      // starts waiting for memory
    std::vector<std::string> servers;    // the names of both
};
// Every pool of the config, and any a row still names (`store`: nullptr when there is no state file).
std::vector<PoolReport> pool_reports(Store* store, const Config* config);

// What a start of `m` would do now (`start --dry-run`), from a reader's snapshot: nothing changes.
struct AdmissionPreview {
    std::optional<ServerRow> row; // the model's row, when it has one (running, starting…)
    const PoolConfig* pool = nullptr;
    Footprint need;
    std::uint64_t budget = 0, used = 0;
    AdmissionPlan plan;
    int queued = 0; // starts ahead in the pool's queue
};
AdmissionPreview preview_admission(const std::string& state_dir, const ModelConfig& m, const Config& config);

// After a server is ready: its measured memory (the RSS of its processes for a "ram" pool), and,
// when more than it counts, the row and the model's footprint record it. Returns the bytes now
// counted (nullopt: nothing could be measured).
std::optional<std::uint64_t> record_measured_memory(const std::string& state_dir, const ServerRow& row, const PoolConfig& pool);

} // namespace llmctl
