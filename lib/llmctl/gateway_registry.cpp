#include "llmctl/gateway_registry.hpp"

#include "llmctl/paths.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"

#include <chrono>
#include <fmt/format.h>

namespace llmctl {

namespace {

std::vector<GatewayRow> gateway_rows(Store& store) {
    std::vector<GatewayRow> out;
    auto q = store.prepare("SELECT id, url, owner_pid, owner_start_ticks, owner_boot_id, started_at, in_flight, served FROM gateways "
                           "ORDER BY id");
    while (q.step()) {
        GatewayRow r;
        r.id = q.i64(0);
        r.url = q.str(1);
        r.owner = identity_at(q, 2);
        r.started_at = q.i64(5);
        r.in_flight = q.i64(6);
        r.served = q.i64(7);
        out.push_back(std::move(r));
    }
    return out;
}

std::vector<GatewayRow> gateways_where_alive(Store& store, bool alive) {
    std::vector<GatewayRow> out;
    for (auto& r : gateway_rows(store))
        if (is_alive(r.owner) == alive) out.push_back(std::move(r));
    return out;
}

} // namespace

std::vector<GatewayRow> live_gateways(Store& store) { return gateways_where_alive(store, true); }

std::vector<GatewayRow> dead_gateways(Store& store) { return gateways_where_alive(store, false); }

std::vector<GatewayRow> delete_dead_gateways(Store& store) {
    auto dead = dead_gateways(store);
    for (const auto& r : dead) store.prepare("DELETE FROM gateways WHERE id=?").bind(1, r.id).run();
    return dead;
}

GatewayRegistry::GatewayRegistry(std::string state_dir, std::string url, const std::atomic<int>& in_flight,
                                 const std::atomic<std::uint64_t>& served, Log log)
    : dir_(std::move(state_dir)), url_(std::move(url)), in_flight_(in_flight), served_(served), log_(std::move(log)),
      started_at_(now_ms()) {
    try { // registered before the gateway says it is ready; a newer state file ends it here
        look_once();
    } catch (const Error& e) {
        if (e.code() == Exit::newer_state) throw;
        warn(e);
    }
    thread_ = std::thread([this] { loop(); });
}

GatewayRegistry::~GatewayRegistry() {
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (!id_ || must_stop_) return;
    try {
        if (store_ || open_store()) store_->prepare("DELETE FROM gateways WHERE id=?").bind(1, id_).run();
    } catch (...) {} // a row left behind is a dead owner's: ignored, and deleted by the next reap
}

std::optional<Error> GatewayRegistry::fatal() const {
    std::lock_guard<std::mutex> g(mu_);
    return fatal_;
}

void GatewayRegistry::loop() {
    std::unique_lock<std::mutex> g(mu_);
    while (!stop_ && !must_stop_) {
        wake_.wait_for(g, std::chrono::seconds(1), [&] { return stop_; });
        if (stop_) break;
        g.unlock();
        look();
        g.lock();
    }
}

void GatewayRegistry::look() {
    try {
        look_once();
    } catch (const Error& e) {
        if (e.code() == Exit::newer_state) return give_up(e);
        warn(e);
    }
}

// Registers when not yet registered, else publishes changed counters; either way checks that no
// newer llmctl has migrated the file (Error(newer_state)).
void GatewayRegistry::look_once() {
    if (store_ && !store_->still_current()) { // replaced (reap --rebuild): our row went with the old file
        store_.reset();
        id_ = 0;
    }
    if (!id_)
        register_row();
    else
        publish_counts();
    if (store_) store_->check_not_newer();
}

void GatewayRegistry::warn(const Error& e) {
    store_.reset();
    if (!std::exchange(warned_, true))
        log_(fmt::format("cannot record this gateway in the state file (ps will not list it): {}", e.what()));
}

bool GatewayRegistry::open_store() {
    auto s = Store::open_update(state_db_path(dir_));
    if (s) store_ = std::make_unique<Store>(std::move(*s));
    return s.has_value();
}

void GatewayRegistry::register_row() {
    ensure_state_dir(dir_);
    {
        auto locked = open_locked(dir_);
        Transaction tx(locked.store);
        delete_dead_gateways(locked.store);
        const std::int64_t in_flight = in_flight_.load(), served = static_cast<std::int64_t>(served_.load());
        locked.store
            .prepare("INSERT INTO gateways(url, owner_pid, owner_start_ticks, owner_boot_id, started_at, in_flight, served) "
                     "VALUES(?,?,?,?,?,?,?)")
            .bind(1, url_)
            .bind(2, me_.pid)
            .bind(3, static_cast<std::int64_t>(me_.start_ticks))
            .bind(4, me_.boot_id)
            .bind(5, started_at_)
            .bind(6, in_flight)
            .bind(7, served)
            .run();
        std::int64_t id = locked.store.last_insert_id();
        tx.commit();
        id_ = id;
        sent_in_flight_ = in_flight;
        sent_served_ = served;
    }
    open_store();
    if (warned_) log_("this gateway is recorded in the state file again");
    warned_ = false;
}

// One UPDATE when a counter changed since the last one: at thousands of requests a second, a
// write per request would cost more than the requests.
void GatewayRegistry::publish_counts() {
    const std::int64_t in_flight = in_flight_.load(), served = static_cast<std::int64_t>(served_.load());
    if (in_flight == sent_in_flight_ && served == sent_served_) return;
    if (!store_ && !open_store()) {
        id_ = 0; // the file is gone: register again
        return;
    }
    store_->prepare("UPDATE gateways SET in_flight=?, served=? WHERE id=?").bind(1, in_flight).bind(2, served).bind(3, id_).run();
    if (store_->changes() == 0) {
        id_ = 0; // deleted (a replaced file, or by hand): register again at the next look
        return;
    }
    sent_in_flight_ = in_flight;
    sent_served_ = served;
    store_->checkpoint_if_large();
}

void GatewayRegistry::give_up(const Error& e) {
    log_(fmt::format("stopping: {} ({})", e.what(), e.hint()));
    {
        std::lock_guard<std::mutex> g(mu_);
        fatal_ = e;
    }
    must_stop_ = true;
}

} // namespace llmctl
