#include "llmctl/logfile.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/fd.hpp"
#include "llmctl/lock.hpp"
#include "llmctl/strings.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llmctl {

namespace {

// Copies [from, to) of `in` to the end of `out`.
void copy_range(int in, int out, std::uint64_t from, std::uint64_t to, const std::string& what) {
    std::string buf(1 << 20, '\0');
    while (from < to) {
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to - from));
        ssize_t n = ::pread(in, buf.data(), want, static_cast<off_t>(from));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_sys("read", what, errno);
        if (n == 0) break;
        std::size_t off = 0;
        while (off < static_cast<std::size_t>(n)) {
            ssize_t w = ::write(out, buf.data() + off, static_cast<std::size_t>(n) - off);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) throw_sys("write", what, errno);
            off += static_cast<std::size_t>(w);
        }
        from += static_cast<std::uint64_t>(n);
    }
}

void write_offset(const std::string& path, std::uint64_t total, bool pending = false) {
    std::string tmp = path + ".offset.tmp";
    {
        Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!fd.valid()) throw_sys("open", tmp, errno);
        std::string text = std::to_string(total) + (pending ? " pending\n" : "\n");
        if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) throw_sys("write", tmp, errno);
    }
    if (::rename(tmp.c_str(), (path + ".offset").c_str()) != 0) throw_sys("rename", tmp, errno);
}

} // namespace

std::uint64_t removed_bytes(const std::string& path) { return read_offset(path).removed; }

LogOffset read_offset(const std::string& path) {
    LogOffset o;
    auto text = read_file(path + ".offset");
    if (!text) return o;
    o.removed = std::strtoull(text->c_str(), nullptr, 10);
    o.pending = text->find("pending") != std::string::npos;
    return o;
}

RotateResult rotate_log(const std::string& path, std::uint64_t max_size, int keep, bool force) {
    RotateResult res;
    struct stat sb {};
    if (::stat(path.c_str(), &sb) != 0) return res;
    if (!force && (max_size == 0 || static_cast<std::uint64_t>(sb.st_size) <= max_size)) return res;
    auto lock = FileLock::acquire(path + ".lock", lock_timeout());
    Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) throw_sys("open", path, errno);
    if (::fstat(fd.get(), &sb) != 0) throw_sys("stat", path, errno);
    auto size = static_cast<std::uint64_t>(sb.st_size);
    if (size == 0 || (!force && size <= max_size)) return res; // rotated by someone else meanwhile
    std::uint64_t before = removed_bytes(path);
    write_offset(path, before, true); // followers: hold on, the head and the old files are about to move
    // Whatever happens from here, the sidecar ends up final again (never left pending).
    struct Unpend {
        const std::string& path;
        std::uint64_t before;
        const RotateResult& res;
        ~Unpend() {
            try {
                write_offset(path, before + res.removed);
            } catch (...) {
            }
        }
    } unpend{path, before, res};
    // Shift NAME.log.(k-1) → .k, …, .1 → .2; the oldest falls off.
    if (keep > 0) {
        std::string oldest = path + "." + std::to_string(keep);
        ::unlink(oldest.c_str());
        for (int i = keep - 1; i >= 1; --i) {
            std::string from = path + "." + std::to_string(i), to = path + "." + std::to_string(i + 1);
            if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) throw_sys("rename", from, errno);
        }
    }
    auto block = static_cast<std::uint64_t>(sb.st_blksize > 0 ? sb.st_blksize : 4096);
    // Block-aligned and short of the end: a collapse range reaching EOF is refused (EINVAL).
    std::uint64_t head = (size - 1) / block * block;
    std::string tmp = path + ".1.tmp";
    Fd out;
    if (keep > 0) {
        out = Fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!out.valid()) throw_sys("open", tmp, errno);
    }
    int err = EINVAL;
    {
        if (head > 0) {
            if (out.valid()) copy_range(fd.get(), out.get(), 0, head, path);
            if (::fallocate(fd.get(), FALLOC_FL_COLLAPSE_RANGE, 0, static_cast<off_t>(head)) == 0) {
                res.collapsed = true;
                res.removed = head;
            } else {
                err = errno;
            }
        }
        if (!res.collapsed) {
            // copytruncate: the rest up to now, then truncate; output written in between is lost.
            res.fallback_reason = head == 0 ? "the log is smaller than one block" : std::string(std::strerror(err));
            struct stat now {};
            if (::fstat(fd.get(), &now) != 0) throw_sys("stat", path, errno);
            auto end = static_cast<std::uint64_t>(now.st_size);
            if (out.valid()) copy_range(fd.get(), out.get(), head, end, path);
            if (::ftruncate(fd.get(), 0) != 0) throw_sys("truncate", path, errno);
            res.removed = end;
        }
        if (out.valid()) {
            out.reset();
            if (::rename(tmp.c_str(), (path + ".1").c_str()) != 0) throw_sys("rename", tmp, errno);
        }
    }
    res.rotated = true;
    return res;
}

} // namespace llmctl
