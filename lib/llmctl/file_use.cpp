#include "llmctl/file_use.hpp"

#include <fcntl.h>
#include <map>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace llmctl {

namespace {

using Key = std::pair<dev_t, ino_t>;

// One mutex orders a use's start against a close: a descriptor is closed either before a
// connection exists or not at all.
std::mutex& mu() {
    static std::mutex m;
    return m;
}
std::map<Key, int>& uses() {
    static std::map<Key, int> m;
    return m;
}
std::map<Key, int>& kept() {
    static std::map<Key, int> m;
    return m;
}

} // namespace

FileUse::FileUse(dev_t dev, ino_t ino) : held_(true), dev_(dev), ino_(ino) {
    std::lock_guard<std::mutex> g(mu());
    ++uses()[{dev, ino}];
}

FileUse::FileUse(FileUse&& o) noexcept : held_(std::exchange(o.held_, false)), dev_(o.dev_), ino_(o.ino_) {}

FileUse& FileUse::operator=(FileUse&& o) noexcept {
    if (this != &o) {
        drop();
        held_ = std::exchange(o.held_, false);
        dev_ = o.dev_;
        ino_ = o.ino_;
    }
    return *this;
}

FileUse::~FileUse() { drop(); }

void FileUse::drop() noexcept {
    if (!held_) return;
    held_ = false;
    std::lock_guard<std::mutex> g(mu());
    auto it = uses().find({dev_, ino_});
    if (it != uses().end() && --it->second == 0) uses().erase(it);
}

CheckDescriptor open_for_check(const char* path) {
    std::lock_guard<std::mutex> g(mu());
    CheckDescriptor d;
    struct stat st {};
    if (::lstat(path, &st) == 0)
        if (auto it = kept().find({st.st_dev, st.st_ino}); it != kept().end()) {
            d.fd = it->second;
            return d;
        }
    d.fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (d.fd >= 0 && ::fstat(d.fd, &st) == 0) {
        d.owned = true;
        d.dev = st.st_dev;
        d.ino = st.st_ino;
    }
    return d;
}

void close_unless_in_use(const CheckDescriptor& d) {
    if (!d.owned) return;
    std::lock_guard<std::mutex> g(mu());
    if (!uses().count({d.dev, d.ino})) {
        ::close(d.fd);
        return;
    }
    // A second one (checks that overlapped before the first was kept) stays open as well: closing
    // it would drop the locks this function is here to keep.
    kept().try_emplace({d.dev, d.ino}, d.fd);
}

} // namespace llmctl
