#pragma once
// One watcher of the state file's leases for a process that holds many waiting ones (`llmctl
// serve`): instead of each waiting request polling the file, one thread notices every change
// (SQLite's data_version, every 10 ms, every 25 ms after a quiet second, or at once for a
// newcomer or a release of this process) and every lease owner that died (every 500 ms), works
// out which waiting leases may now be granted (as many as the model has free slots, in order),
// and wakes only those, each through a condition variable of its own. With a thousand requests
// waiting, the process stays near idle, and a slot freed by another process is noticed within
// tens of ms.

#include "llmctl/slots.hpp"
#include "llmctl/units.hpp"

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace llmctl {

class LeaseWatch {
public:
    explicit LeaseWatch(std::string state_dir);
    LeaseWatch(const LeaseWatch&) = delete;
    ~LeaseWatch();

    // Lease `id` (of `req`, which must outlive the enrolment) waits here until leave(id); the
    // watcher looks at it at its next round.
    void enroll(std::int64_t id, const SlotRequest& req);
    void leave(std::int64_t id);

    // A lease of this process was released: look now rather than at the next round.
    void poke();

    // Blocks until the enrolled lease `id` is worth a try (its turn per the watcher's last look,
    // or a holder died), its request is cancelled (SlotRequest::cancelled, polled by the watcher
    // once a second for all waiters), or `at_most` passed; true when woken.
    bool wait(std::int64_t id, Millis at_most);

private:
    struct Waiting {
        const SlotRequest* req = nullptr;
        bool worth_trying = false;
        std::condition_variable woken;
    };
    void watch();
    void look(class Store& reader);
    void wake_the_cancelled();

    std::string dir_;
    std::mutex mu_;
    std::condition_variable work_;
    std::map<std::int64_t, Waiting> waiting_; // by lease id: FIFO order within a model
    bool stop_ = false;
    bool newcomer_ = false; // an enrolment since the last look
    std::thread thread_;
};

} // namespace llmctl
