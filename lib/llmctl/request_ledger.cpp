#include "llmctl/request_ledger.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"
#include "llmctl/store.hpp"

#include <utility>

namespace llmctl {

namespace {

constexpr std::int64_t k_requests_trim_every = 100;

void insert_row(Store& s, const RequestRecord& r) {
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
    s.trim_to_newest("DELETE FROM requests WHERE id <= ?", s.last_insert_id(), k_requests_kept, k_requests_trim_every);
}

void add_totals(Store& s, const LedgerBatch::Key& k, const LedgerBatch::Totals& t) {
    s.prepare("INSERT INTO request_totals(model, via, status, requests, tokens_in, tokens_out, queue_ms, duration_ms) "
              "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(model, via, status) DO UPDATE SET requests = requests + excluded.requests, "
              "tokens_in = tokens_in + excluded.tokens_in, tokens_out = tokens_out + excluded.tokens_out, "
              "queue_ms = queue_ms + excluded.queue_ms, duration_ms = duration_ms + excluded.duration_ms")
        .bind(1, std::get<0>(k))
        .bind(2, std::get<1>(k))
        .bind(3, std::int64_t{std::get<2>(k)})
        .bind(4, t.requests)
        .bind(5, t.tokens_in)
        .bind(6, t.tokens_out)
        .bind(7, t.queue_ms)
        .bind(8, t.duration_ms)
        .run();
}

} // namespace

void LedgerBatch::add(RequestRecord r) {
    Totals& t = totals[{r.model, r.via, r.status}];
    ++t.requests;
    t.tokens_in += r.tokens_in.value_or(0);
    t.tokens_out += r.tokens_out;
    t.queue_ms += r.queue_wait.count();
    t.duration_ms += r.duration.count();
    rows.push_back(std::move(r));
    if (rows.size() > k_rows_per_write) rows.pop_front();
}

void LedgerBatch::add_older(LedgerBatch&& older) {
    for (const auto& [k, t] : older.totals) {
        Totals& mine = totals[k];
        mine.requests += t.requests;
        mine.tokens_in += t.tokens_in;
        mine.tokens_out += t.tokens_out;
        mine.queue_ms += t.queue_ms;
        mine.duration_ms += t.duration_ms;
    }
    for (; !older.rows.empty() && rows.size() < k_rows_per_write; older.rows.pop_back()) rows.push_front(std::move(older.rows.back()));
}

bool write_batch(const std::string& state_dir, const LedgerBatch& batch) {
    if (batch.empty()) return true;
    try {
        auto store = Store::open_update(state_db_path(state_dir));
        if (!store) return false;
        Transaction tx(*store);
        for (const RequestRecord& r : batch.rows) insert_row(*store, r);
        for (const auto& [k, t] : batch.totals) add_totals(*store, k, t);
        tx.commit();
        store->checkpoint_if_large();
        return true;
    } catch (const Error&) {
        return false;
    }
}

bool record_requests(const std::string& state_dir, std::vector<RequestRecord> records) {
    LedgerBatch batch;
    for (RequestRecord& r : records) batch.add(std::move(r));
    return write_batch(state_dir, batch);
}

RequestLedger::RequestLedger(std::string state_dir, Millis every)
    : dir_(std::move(state_dir)), every_(every), pending_(std::make_unique<LedgerBatch>()) {
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
    pending_->add(std::move(r));
}

std::unique_ptr<LedgerBatch> RequestLedger::take_pending() {
    auto fresh = std::make_unique<LedgerBatch>(); // (allocated before the lock)
    std::lock_guard<std::mutex> g(mu_);
    return std::exchange(pending_, std::move(fresh));
}

void RequestLedger::flush() {
    std::unique_ptr<LedgerBatch> batch = take_pending();
    if (write_batch(dir_, *batch)) return;
    std::lock_guard<std::mutex> g(mu_);
    pending_->add_older(std::move(*batch));
}

void RequestLedger::run() {
    std::unique_lock<std::mutex> g(mu_);
    for (;;) {
        cv_.wait_for(g, every_, [this] { return stopping_; });
        const bool last = stopping_;
        g.unlock();
        flush();
        g.lock();
        if (last) return;
    }
}

} // namespace llmctl
