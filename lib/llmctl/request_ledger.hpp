#pragma once
// Token accounting (issue 22): every request of `chat` and `serve`, as it ended, in the state
// file's `requests` table (the newest k_requests_kept) and added to its model's
// `request_totals` (kept for good: Prometheus counters). Written after the request, in a
// transaction of its own and without the state lock (SQLite serialises it with the lock holders'
// transactions, as a chat's last_used): never on the path that grants a slot or starts a server.
// A write that fails (a full disk, a busy file) loses the record, never the request. A write
// keeps at most 1,000 rows (the newest): beyond 1,000 requests a second through one serve the
// rows are a sample, while the totals count every request.

#include "llmctl/units.hpp"

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace llmctl {

constexpr std::int64_t k_requests_kept = 10'000;

struct RequestRecord {
    std::string model;
    std::string via;     // chat | serve
    int status = 0;      // the HTTP status the client got (chat: as serve would have answered)
    std::string outcome; // ok | error | cancelled (the client went, or Ctrl-C)
    Millis queue_wait{0};
    std::optional<Millis> first_token; // from the request's arrival; none: no token came
    Millis duration{0};
    std::optional<std::int64_t> tokens_in; // the server's usage.prompt_tokens; none: not said
    std::int64_t tokens_out = 0;           // usage.completion_tokens, else the chunks that carried text
    bool counted = false;                  // tokens_out was counted from chunks
    std::int64_t at_ms = 0;                // when it ended (0: now)
};

// Writes the records in one transaction; false when they could not be written.
bool record_requests(const std::string& state_dir, std::vector<RequestRecord> records);

// A long-running process's records (serve: thousands a second at its busiest), written by a
// thread of its own at most every `every`: a request's end costs a lock and a push. What is
// pending is written when it is destroyed.
class RequestLedger {
public:
    explicit RequestLedger(std::string state_dir, Millis every = Millis(1'000));
    ~RequestLedger();
    RequestLedger(const RequestLedger&) = delete;
    RequestLedger& operator=(const RequestLedger&) = delete;

    void add(RequestRecord r);
    // Writes what is pending now, on the caller's thread.
    void flush();

private:
    void run();
    std::string dir_;
    Millis every_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<RequestRecord> pending_;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace llmctl
