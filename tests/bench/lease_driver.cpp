// The lease figure of the gateway benchmark (docs/BENCHMARKS.md, section serve): leases
// acquired and released per second through the state file, by N threads of one process that
// each take a lease, turn it into a slot and release it, over and over, for a duration. It is
// what `llmctl serve` does per request (QueuedLease taken on arrival, through the process's one
// LeaseBroker and LeaseWatch; the slot's release, not waited for), without the HTTP around it.
//
//   llmctl-bench-leases STATE_DIR MODEL THREADS SECONDS
//
// Prints one JSON object: {"leases": N, "seconds": S, "leases_per_s": R, "errors": E}. The state
// dir must exist with a state file (any llmctl command on it makes one); MODEL needs no server.

#include "llmctl/lease_broker.hpp"
#include "llmctl/lease_watch.hpp"
#include "llmctl/slots.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: llmctl-bench-leases STATE_DIR MODEL THREADS SECONDS\n");
        return 2;
    }
    std::string dir = argv[1];
    int threads = std::atoi(argv[3]);
    double seconds = std::atof(argv[4]);
    llmctl::LeaseBroker broker(dir);
    llmctl::LeaseWatch watch(dir);
    llmctl::SlotRequest req;
    req.model = argv[2];
    req.max_concurrent = 100000;
    req.take_if_ready = true; // no server to start: taken in the transaction that queues it
    req.watch = &watch;
    req.broker = &broker;
    std::atomic<long> leases{0}, errors{0};
    std::atomic<bool> stop{false};
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i)
        pool.emplace_back([&] {
            while (!stop) {
                try {
                    llmctl::QueuedLease lease(dir, req); // queued on arrival, as serve does
                    llmctl::Slot slot = lease.wait();
                    slot.release();
                    ++leases;
                } catch (const std::exception& e) {
                    if (++errors == 1) std::fprintf(stderr, "llmctl-bench-leases: %s\n", e.what());
                }
            }
        });
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    long done = leases.load();
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (auto& t : pool) t.join();
    std::printf("{\"leases\": %ld, \"seconds\": %.3f, \"leases_per_s\": %.1f, \"errors\": %ld}\n", done, wall, done / wall, errors.load());
    return 0;
}
