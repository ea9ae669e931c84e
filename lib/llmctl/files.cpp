#include "llmctl/files.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/fd.hpp"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llmctl {

std::optional<std::string> read_file(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return std::nullopt;
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return std::nullopt;
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

std::optional<std::string> read_tail(const std::string& path, std::size_t max_bytes) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return std::nullopt;
    struct stat sb {};
    if (::fstat(fd.get(), &sb) != 0) return std::nullopt;
    auto size = static_cast<std::size_t>(sb.st_size);
    std::size_t want = std::min(size, max_bytes);
    std::string out(want, '\0');
    std::size_t got = 0;
    while (got < want) {
        ssize_t n = ::pread(fd.get(), out.data() + got, want - got, static_cast<off_t>(size - want + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
}

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (auto* e = ::readdir(d)) {
        std::string_view name = e->d_name;
        if (name != "." && name != "..") out.emplace_back(name);
    }
    ::closedir(d);
    return out;
}

void write_file_atomically(const std::string& path, const std::string& text) {
    // A new file of an unguessable name (O_EXCL: a link planted beside the path is never
    // followed), readable by all (node_exporter runs as another user), on disk before the rename.
    std::string temp = path + ".tmp.XXXXXX";
    auto fail = [&](int err, bool made) {
        if (made) ::unlink(temp.c_str());
        throw Error(Exit::failure, fmt::format("cannot write {}: {}", path, std::strerror(err)),
                    "check that its directory exists and that you may write there (the file is replaced by a rename from beside it)");
    };
    Fd fd(::mkostemp(temp.data(), O_CLOEXEC));
    if (!fd.valid()) fail(errno, false);
    if (::fchmod(fd.get(), 0644) != 0) fail(errno, true);
    for (std::size_t off = 0; off < text.size();) {
        ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail(n < 0 ? errno : EIO, true);
        off += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) fail(errno, true);
    if (::close(fd.release()) != 0) fail(errno, true);
    if (::rename(temp.c_str(), path.c_str()) != 0) fail(errno, true);
}

} // namespace llmctl
