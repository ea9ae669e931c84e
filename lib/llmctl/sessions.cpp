#include "llmctl/sessions.hpp"

#include "llmctl/paths.hpp"
#include "llmctl/process.hpp"
#include "llmctl/store.hpp"

namespace llmctl {

Messages load_session(const std::string& state_dir, const std::string& session) {
    Messages msgs;
    if (auto store = Store::open_read(state_db_path(state_dir))) {
        auto q = store->prepare("SELECT role, content FROM messages WHERE session=? ORDER BY id");
        q.bind(1, session);
        while (q.step()) msgs.emplace_back(q.str(0), q.str(1));
    }
    return msgs;
}

void save_turn(const std::string& state_dir, const std::string& session, const std::string& model, const std::string& user,
               const std::string& assistant) {
    auto locked = open_locked(state_dir, LockOrder::lock_first);
    Transaction tx(locked.store);
    std::int64_t now = now_ms();
    locked.store
        .prepare("INSERT INTO sessions(name, model, created_at, updated_at) VALUES(?,?,?,?) "
                 "ON CONFLICT(name) DO UPDATE SET updated_at=excluded.updated_at")
        .bind(1, session)
        .bind(2, model)
        .bind(3, now)
        .bind(4, now)
        .run();
    for (auto& [role, text] : Messages{{"user", user}, {"assistant", assistant}})
        locked.store.prepare("INSERT INTO messages(session, role, content, at) VALUES(?,?,?,?)")
            .bind(1, session)
            .bind(2, role)
            .bind(3, text)
            .bind(4, now)
            .run();
    tx.commit();
}

void forget_session(const std::string& state_dir, const std::string& session) {
    auto locked = open_locked(state_dir, LockOrder::lock_first);
    locked.store.prepare("DELETE FROM messages WHERE session=?").bind(1, session).run();
}

} // namespace llmctl
