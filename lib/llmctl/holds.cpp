#include "llmctl/holds.hpp"

#include "llmctl/process.hpp"

namespace llmctl {

// (An ad-hoc server never comes back by itself: a stop already calls its restart off.)
bool stop_holds(const ModelConfig& m) { return !m.external() && !m.adhoc && (m.restart == "always" || m.preload); }

void add_hold(Store& store, const std::string& name, const std::string& origin) {
    store
        .prepare("INSERT INTO holds(name, origin, at) VALUES(?,?,?) ON CONFLICT(name) DO UPDATE SET origin=excluded.origin, at=excluded.at")
        .bind(1, name)
        .bind(2, origin)
        .bind(3, now_ms())
        .run();
}

bool release_hold(Store& store, const std::string& name) {
    store.prepare("DELETE FROM holds WHERE name=?").bind(1, name).run();
    return store.changes() > 0;
}

bool is_held(Store& store, const std::string& name) {
    auto q = store.prepare("SELECT 1 FROM holds WHERE name=?");
    q.bind(1, name);
    return q.step();
}

std::vector<Hold> load_holds(Store& store) {
    std::vector<Hold> out;
    auto q = store.prepare("SELECT name, coalesce(origin, ''), at FROM holds ORDER BY name");
    while (q.step()) out.push_back({q.str(0), q.str(1), q.i64(2)});
    return out;
}

bool hold_down(Store& store, const ModelConfig& m) {
    if (!stop_holds(m)) return false;
    add_hold(store, m.name, m.origin);
    store.add_event(m.name, "held",
                    m.preload ? "preload: kept down until start or apply" : "restart = \"always\": kept down until start or apply");
    return true;
}

} // namespace llmctl
