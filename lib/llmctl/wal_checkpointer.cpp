#include "llmctl/wal_checkpointer.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/store.hpp"

#include <optional>

namespace llmctl {
namespace {

// The connection to checkpoint through: the one kept while it names the state file, a new one
// when the file was replaced (or made since), none while there is no file.
void reopen_if_stale(std::optional<Store>& store, const std::string& db_path) {
    if (store && store->still_current()) return;
    store.reset();
    try {
        store = Store::open_update(db_path);
    } catch (const Error&) {} // (a file serve cannot use: its requests say why)
}

} // namespace

WalCheckpointer::WalCheckpointer(std::string state_dir) : db_path_(state_db_path(state_dir)) {
    Store::set_checkpoints_elsewhere(true);
    thread_ = std::thread([this] { loop(); });
}

WalCheckpointer::~WalCheckpointer() {
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
    Store::set_checkpoints_elsewhere(false);
}

void WalCheckpointer::loop() {
    std::optional<Store> store;
    int copied_at = 0; // the WAL's length when it was last copied: no commit since, nothing new
    std::unique_lock<std::mutex> g(mu_);
    while (!wake_.wait_for(g, k_look_every, [this] { return stop_; })) {
        const int frames = Store::wal_frames_lately();
        if (frames < k_copy_from_frames || frames == copied_at) continue;
        g.unlock();
        reopen_if_stale(store, db_path_);
        if (store) store->checkpoint_passive();
        copied_at = frames;
        g.lock();
    }
    g.unlock();
    reopen_if_stale(store, db_path_);
    if (store) store->checkpoint_truncate(Millis{100});
}

} // namespace llmctl
