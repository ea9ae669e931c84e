#pragma once
// Token accounting (issue 22): every request of `chat` and `serve`, as it ended, in the state
// file's `requests` table (the newest k_requests_kept) and added to its model's
// `request_totals` (kept for good: Prometheus counters). Written after the request, in a
// transaction of its own and without the state lock (SQLite serialises it with the lock holders'
// transactions, as a chat's last_used): never on the path that grants a slot or starts a server.
// A write that fails (a full disk, a busy file) never fails the request: chat's record is lost,
// serve's is carried into its next write. A write
// keeps at most 1,000 rows (the newest): beyond 1,000 requests a second through one serve the
// rows are a sample, while the totals count every request.

#include "llmctl/units.hpp"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
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

// Requests between two writes, held in a bounded space however many came: every one added up by
// model, via and status (one upsert each when written), and only the newest rows (the write lock
// is then held some milliseconds, not a tenth of a second, however busy serve is; the totals
// count every request).
struct LedgerBatch {
    struct Totals {
        std::int64_t requests = 0, tokens_in = 0, tokens_out = 0, queue_ms = 0, duration_ms = 0;
    };
    using Key = std::tuple<std::string, std::string, int>; // model, via, status
    static constexpr std::size_t k_rows_per_write = 1000;

    std::map<Key, Totals> totals;
    std::deque<RequestRecord> rows; // the newest k_rows_per_write
    void add(RequestRecord r);
    // A batch that came before this one (one that could not be written): its totals added, its
    // rows before these (the newest k_rows_per_write of both kept).
    void add_older(LedgerBatch&& older);
    bool empty() const { return rows.empty(); }
};

// Writes a batch in one transaction; false when it could not be written.
bool write_batch(const std::string& state_dir, const LedgerBatch& batch);
// The records as one batch.
bool record_requests(const std::string& state_dir, std::vector<RequestRecord> records);

// A long-running process's records (serve: thousands a second at its busiest), written by a
// thread of its own at most every `every`: a request's end costs a lock and adding it to the
// batch (whose space is bounded: at 20,000 requests a second a list of every record held 4 MB
// and left serve's heap 15 MiB larger). What is pending is written when it is destroyed.
class RequestLedger {
public:
    explicit RequestLedger(std::string state_dir, Millis every = Millis(1'000));
    ~RequestLedger();
    RequestLedger(const RequestLedger&) = delete;
    RequestLedger& operator=(const RequestLedger&) = delete;

    void add(RequestRecord r);
    // Writes what is pending now, on the caller's thread. A write that fails (a full disk, a busy
    // file) is tried again with the next: the totals lose nothing while the process lives.
    void flush();

private:
    void run();
    std::unique_ptr<LedgerBatch> take_pending();
    std::string dir_;
    Millis every_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::unique_ptr<LedgerBatch> pending_;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace llmctl
