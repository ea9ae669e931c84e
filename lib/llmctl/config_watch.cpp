#include "llmctl/config_watch.hpp"

#include <sys/stat.h>

namespace llmctl {

ConfigWatch::ConfigWatch(std::string path) : path_(std::move(path)) { seen_ = last_ = read(); }

ConfigWatch::Signature ConfigWatch::read() const {
    Signature s;
    struct stat st {};
    if (path_.empty() || ::stat(path_.c_str(), &st) != 0) return s;
    s.exists = true;
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.size = st.st_size;
    s.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000LL + st.st_mtim.tv_nsec;
    return s;
}

bool ConfigWatch::changed() {
    Signature now = read();
    bool settled = now == last_;
    last_ = now;
    if (!settled || now == seen_) return false;
    seen_ = now;
    return true;
}

} // namespace llmctl
