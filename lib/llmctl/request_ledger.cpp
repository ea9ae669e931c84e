#include "llmctl/request_ledger.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"
#include "llmctl/store.hpp"

namespace llmctl {

namespace {

constexpr std::int64_t k_requests_trim_every = 100;

void insert_record(Store& s, const RequestRecord& r) {
    s.prepare("INSERT INTO requests(at, model, via, status, outcome, queue_ms, ttft_ms, duration_ms, tokens_in, tokens_out, counted) "
              "VALUES(?,?,?,?,?,?,?,?,?,?,?)")
        .bind(1, r.at_ms ? r.at_ms : now_ms())
        .bind(2, r.model)
        .bind(3, r.via)
        .bind(4, std::int64_t{r.status})
        .bind(5, r.outcome)
        .bind(6, std::int64_t{r.queue_wait.count()})
        .bind(7, r.first_token ? std::optional<std::int64_t>(r.first_token->count()) : std::nullopt)
        .bind(8, std::int64_t{r.duration.count()})
        .bind(9, r.tokens_in)
        .bind(10, r.tokens_out)
        .bind(11, std::int64_t{r.counted})
        .run();
    const std::int64_t id = s.last_insert_id();
    s.prepare("INSERT INTO request_totals(model, via, status, requests, tokens_in, tokens_out, queue_ms, duration_ms) "
              "VALUES(?,?,?,1,?,?,?,?) ON CONFLICT(model, via, status) DO UPDATE SET requests = requests + 1, "
              "tokens_in = tokens_in + excluded.tokens_in, tokens_out = tokens_out + excluded.tokens_out, "
              "queue_ms = queue_ms + excluded.queue_ms, duration_ms = duration_ms + excluded.duration_ms")
        .bind(1, r.model)
        .bind(2, r.via)
        .bind(3, std::int64_t{r.status})
        .bind(4, r.tokens_in.value_or(0))
        .bind(5, r.tokens_out)
        .bind(6, std::int64_t{r.queue_wait.count()})
        .bind(7, std::int64_t{r.duration.count()})
        .run();
    // As the events table: every k_requests_trim_every-th row deletes the older ones at once.
    if (id % k_requests_trim_every == 0 && id > k_requests_kept)
        s.prepare("DELETE FROM requests WHERE id <= ?").bind(1, id - k_requests_kept).run();
}

} // namespace

bool record_requests(const std::string& state_dir, std::vector<RequestRecord> records) {
    if (records.empty()) return true;
    try {
        auto store = Store::open_update(state_db_path(state_dir));
        if (!store) return false;
        Transaction tx(*store);
        for (const RequestRecord& r : records) insert_record(*store, r);
        tx.commit();
        store->checkpoint_if_large();
        return true;
    } catch (const Error&) {
        return false;
    }
}

RequestLedger::RequestLedger(std::string state_dir, Millis every) : dir_(std::move(state_dir)), every_(every) {
    thread_ = std::thread([this] { run(); });
}

RequestLedger::~RequestLedger() {
    {
        std::lock_guard<std::mutex> g(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void RequestLedger::add(RequestRecord r) {
    if (!r.at_ms) r.at_ms = now_ms();
    std::lock_guard<std::mutex> g(mu_);
    pending_.push_back(std::move(r));
}

void RequestLedger::run() {
    std::unique_lock<std::mutex> g(mu_);
    for (;;) {
        cv_.wait_for(g, every_, [this] { return stopping_; });
        std::vector<RequestRecord> batch;
        batch.swap(pending_);
        const bool last = stopping_;
        g.unlock();
        record_requests(dir_, std::move(batch));
        g.lock();
        if (last) return;
    }
}

} // namespace llmctl
