#pragma once
// The WAL checkpoints of `llmctl serve` (ARCHITECTURE.md, "State file"). A short invocation
// empties the WAL itself after its transaction (LockedStore: TRUNCATE, whose fsyncs hold every
// writer). In serve that ran on the lease broker's thread after a round, every 128 frames, and
// each lease decision meanwhile waited for the fsyncs (up to 1.9 s with model servers writing
// their logs). While a WalCheckpointer lives, LockedStore and reap leave the WAL to its thread,
// which copies it back without holding writers (PASSIVE) once it is long, and empties it
// (TRUNCATE) when destroyed. Long, because the commit that finds the WAL all copied starts it
// over and must sync its new header inside its transaction (SQLite's rule against a torn
// restart): a decision waits for that one fsync, so it happens once per 4,096 frames (16 MiB
// at serve's pace of lease decisions, every 15-20 s), not once per 128.

#include "llmctl/units.hpp"

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace llmctl {

class WalCheckpointer {
public:
    explicit WalCheckpointer(std::string state_dir);
    WalCheckpointer(const WalCheckpointer&) = delete;
    ~WalCheckpointer(); // stops, then empties the WAL (waiting at most 100 ms for others)

    static constexpr Millis k_look_every{200};
    static constexpr int k_copy_from_frames = 4096;

private:
    void loop();

    std::string db_path_;
    std::mutex mu_;
    std::condition_variable wake_;
    bool stop_ = false;
    std::thread thread_;
};

} // namespace llmctl
