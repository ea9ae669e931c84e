#include "llmctl/logfile.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/fd.hpp"
#include "llmctl/files.hpp"
#include "llmctl/lock.hpp"
#include "llmctl/strings.hpp"
#include "llmctl/units.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/falloc.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace llmctl {

namespace {

bool filesystem_full(int err) { return err == ENOSPC || err == EDQUOT; }

std::string old_file(const std::string& path, int k) { return path + "." + std::to_string(k); }

std::uint64_t file_size(const std::string& path) {
    struct stat sb {};
    return ::stat(path.c_str(), &sb) == 0 ? static_cast<std::uint64_t>(sb.st_size) : 0;
}

// How many old files NAME.log.1, .2 … there are (numbered without gaps).
int count_old_files(const std::string& path) {
    int k = 0;
    struct stat sb {};
    while (::stat(old_file(path, k + 1).c_str(), &sb) == 0) ++k;
    return k;
}

void unlink_file(const std::string& file) {
    if (::unlink(file.c_str()) != 0 && errno != ENOENT) throw_sys("unlink", file, errno);
}

// Appends [from, to) of `in` to `out`, advancing `from`. Returns 0, or the errno of a write
// that failed because the filesystem is full; other errors throw.
int append_range(int in, int out, std::uint64_t& from, std::uint64_t to, const std::string& in_path, const std::string& out_path) {
    std::string buf(1 << 20, '\0');
    while (from < to) {
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to - from));
        ssize_t n = ::pread(in, buf.data(), want, static_cast<off_t>(from));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_sys("read", in_path, errno);
        if (n == 0) break;
        std::size_t off = 0;
        while (off < static_cast<std::size_t>(n)) {
            ssize_t w = ::write(out, buf.data() + off, static_cast<std::size_t>(n) - off);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && filesystem_full(errno)) return errno;
            if (w < 0) throw_sys("write", out_path, errno);
            off += static_cast<std::size_t>(w);
        }
        from += static_cast<std::uint64_t>(n);
    }
    return 0;
}

// The next version of NAME.log.offset, written to a temp file next to it before it is published.
// Publishing overwrites bytes already allocated and renames, so it needs no new space: a
// rotation on a full filesystem can always end with a final (not pending) sidecar.
class SidecarDraft {
public:
    // The draft NAME.log.offset.SUFFIX, or nullopt with `err` set when the filesystem is full;
    // other errors throw.
    static std::optional<SidecarDraft> create(const std::string& log, const char* suffix, int& err) {
        std::string tmp = log + ".offset." + suffix;
        Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!fd.valid() && filesystem_full(errno)) return err = errno, std::nullopt;
        if (!fd.valid()) throw_sys("open", tmp, errno);
        SidecarDraft d(log, std::move(tmp), std::move(fd));
        const std::string room(k_room, ' '); // room for the longest text: 20 digits + " pending\n"
        if (::pwrite(d.fd_.get(), room.data(), room.size(), 0) == static_cast<ssize_t>(room.size())) return d;
        if (!filesystem_full(errno)) throw_sys("write", d.tmp_, errno);
        err = errno;
        return std::nullopt;
    }

    SidecarDraft(SidecarDraft&& o) noexcept : log_(std::move(o.log_)), tmp_(std::exchange(o.tmp_, {})), fd_(std::move(o.fd_)) {}
    SidecarDraft& operator=(SidecarDraft&&) = delete;
    ~SidecarDraft() {
        if (!tmp_.empty()) ::unlink(tmp_.c_str()); // never published
    }

    void publish(std::uint64_t total, bool pending) {
        std::string text = std::to_string(total) + (pending ? " pending\n" : "\n");
        if (::pwrite(fd_.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) throw_sys("write", tmp_, errno);
        if (::ftruncate(fd_.get(), static_cast<off_t>(text.size())) != 0) throw_sys("truncate", tmp_, errno);
        fd_.reset();
        if (::rename(tmp_.c_str(), (log_ + ".offset").c_str()) != 0) throw_sys("rename", tmp_, errno);
        tmp_.clear();
    }

private:
    static constexpr std::size_t k_room = 32;
    SidecarDraft(std::string log, std::string tmp, Fd fd) : log_(std::move(log)), tmp_(std::move(tmp)), fd_(std::move(fd)) {}
    std::string log_, tmp_;
    Fd fd_;
};

std::uint64_t block_size(const struct stat& sb) { return static_cast<std::uint64_t>(sb.st_blksize > 0 ? sb.st_blksize : 4096); }

// One rotation of an open live log, under its lock. The head is copied to NAME.log.1.tmp, then
// removed from the live file; only then are the old files shifted and the copy named .1, so a
// copy that fails leaves the old files as they were. The log is larger than one block, so the
// head is at least one block (rotate_log leaves smaller logs alone).
class Rotation {
public:
    Rotation(const std::string& path, int keep, Fd live, const struct stat& sb)
        : path_(path), tmp_(path + ".1.tmp"), keep_(keep), live_(std::move(live)), size_(static_cast<std::uint64_t>(sb.st_size)),
          block_(block_size(sb)), olds_(count_old_files(path)), keeping_(keep > 0) {
        // Block-aligned and short of the end: a collapse range reaching EOF is refused (EINVAL).
        head_ = (size_ - 1) / block_ * block_;
    }

    RotateResult run() {
        std::uint64_t before = read_offset(path_).removed;
        // Both versions of the sidecar are reserved before the first is published: a full
        // filesystem cannot leave it pending.
        SidecarDraft done = reserve_sidecar("final.tmp"), pending = reserve_sidecar("tmp");
        pending.publish(before, true); // followers: hold on, the head and the old files are about to move
        try {
            move_head();
        } catch (...) {
            out_.reset();
            ::unlink(tmp_.c_str());
            done.publish(before + res_.removed, false); // never left pending
            throw;
        }
        done.publish(before + res_.removed, false);
        res_.rotated = true;
        return res_;
    }

private:
    void move_head() {
        if (keeping_) keep_upto(head_);
        if (!collapse_head()) truncate_all();
        if (keeping_) {
            shift_old_files();
            if (::rename(tmp_.c_str(), old_file(path_, 1).c_str()) != 0) throw_sys("rename", tmp_, errno);
            res_.kept = true;
        } else {
            // Nothing of this rotation is kept: older files no longer chain back from the new
            // total (log_stream.hpp), so none may stay. On a full disk they are gone already.
            while (olds_ > 0) unlink_file(old_file(path_, olds_--));
            if (keep_ > 0) res_.discarded = res_.removed;
        }
    }

    // Removes the head in place (lossless); false when the filesystem cannot.
    bool collapse_head() {
        if (::fallocate(live_.get(), FALLOC_FL_COLLAPSE_RANGE, 0, static_cast<off_t>(head_)) != 0) {
            res_.fallback_reason = std::strerror(errno);
            return false;
        }
        res_.collapsed = true;
        res_.removed = head_;
        return true;
    }

    // copytruncate: the rest up to now, then truncate; output written in between is lost.
    void truncate_all() {
        struct stat now {};
        if (::fstat(live_.get(), &now) != 0) throw_sys("stat", path_, errno);
        auto end = static_cast<std::uint64_t>(now.st_size);
        if (keeping_) keep_upto(end);
        if (::ftruncate(live_.get(), 0) != 0) throw_sys("truncate", path_, errno);
        res_.removed = end;
    }

    // Makes NAME.log.1.tmp hold [0, to) of the live file. On a full filesystem the oldest kept
    // files are deleted until it fits; when none is left, keeping_ turns false.
    void keep_upto(std::uint64_t to) {
        while (keeping_) {
            int err = out_.valid() ? 0 : open_copy();
            if (err == 0) err = append_range(live_.get(), out_.get(), copied_, to, path_, tmp_);
            if (err == 0) return;
            // Give back what the partial copy took; it starts over once room was made.
            out_.reset();
            unlink_file(tmp_);
            if (!make_room("write", tmp_, err)) keeping_ = false;
        }
    }

    int open_copy() {
        out_ = Fd(::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
        copied_ = 0;
        if (!out_.valid() && !filesystem_full(errno)) throw_sys("open", tmp_, errno);
        return out_.valid() ? 0 : errno;
    }

    // Deletes the oldest kept file because `call` on `file` found the filesystem full; false
    // when none is left.
    bool make_room(const char* call, const std::string& file, int err) {
        if (res_.full_reason.empty()) res_.full_reason = fmt::format("{}({}): {}", call, file, std::strerror(err));
        if (olds_ == 0) return false;
        std::string oldest = old_file(path_, olds_);
        std::uint64_t size = file_size(oldest);
        unlink_file(oldest);
        --olds_;
        ++res_.deleted_files;
        res_.deleted_bytes += size;
        return true;
    }

    // A sidecar draft, making room on a full filesystem. With no old file left to delete, the
    // oldest blocks of the head are punched out (FALLOC_FL_PUNCH_HOLE): this rotation cannot
    // keep the head then (a copy needs more room than the draft), so it is discarded anyway.
    SidecarDraft reserve_sidecar(const char* suffix) {
        std::string what = path_ + ".offset." + suffix;
        for (;;) {
            int err = 0;
            if (auto d = SidecarDraft::create(path_, suffix, err)) return std::move(*d);
            if (make_room("write", what, err)) continue;
            keeping_ = false;
            if (punched_ >= head_ || ::fallocate(live_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(punched_),
                                                 static_cast<off_t>(block_)) != 0)
                throw_sys("write", what, err);
            punched_ += block_;
        }
    }

    // NAME.log.(keep-1) → .keep, …, .1 → .2; files from .keep on (a lowered log_keep) go.
    void shift_old_files() {
        for (; olds_ >= keep_; --olds_) unlink_file(old_file(path_, olds_));
        for (int k = olds_; k >= 1; --k)
            if (::rename(old_file(path_, k).c_str(), old_file(path_, k + 1).c_str()) != 0) throw_sys("rename", old_file(path_, k), errno);
    }

    const std::string& path_;
    const std::string tmp_;
    const int keep_;
    Fd live_;
    const std::uint64_t size_, block_;
    std::uint64_t head_ = 0;
    int olds_;     // old files NAME.log.1 … .olds_ present
    bool keeping_; // the removed bytes will be kept in NAME.log.1
    Fd out_;       // NAME.log.1.tmp while copying
    std::uint64_t copied_ = 0;
    std::uint64_t punched_ = 0; // head bytes punched out to make room for the sidecar
    RotateResult res_;
};

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
    struct stat sb {};
    if (::stat(path.c_str(), &sb) != 0) return {};
    if (!force && (max_size == 0 || static_cast<std::uint64_t>(sb.st_size) <= max_size)) return {};
    auto lock = FileLock::acquire(path + ".lock", lock_timeout());
    Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) throw_sys("open", path, errno);
    if (::fstat(fd.get(), &sb) != 0) throw_sys("stat", path, errno);
    auto size = static_cast<std::uint64_t>(sb.st_size);
    if (size == 0 || (!force && size <= max_size)) return {}; // rotated by someone else meanwhile
    // At most one block: there is no whole block to collapse (the range must end short of EOF),
    // and copy + truncate would lose what the server writes meanwhile, so the log stays as it
    // is, whatever the server writes from now on; the next rotation takes it. (A log that was
    // this small here but had grown by the time of the copy + truncate lost output on ext4.)
    if (std::uint64_t block = block_size(sb); size <= block) {
        RotateResult r;
        r.not_rotated = fmt::format("{}: a log of at most one block, {}, is left as it is", format_size(size), format_size(block));
        return r;
    }
    return Rotation(path, keep, std::move(fd), sb).run();
}

std::string describe_rotation(const RotateResult& r, const std::string& path, bool verbose) {
    if (!r.rotated) return fmt::format("{}: nothing to rotate{}", path, r.not_rotated.empty() ? "" : " (" + r.not_rotated + ")");
    std::string name = path.substr(path.rfind('/') + 1);
    std::string text = fmt::format("rotated {}: ", path);
    if (r.kept)
        text += fmt::format("{} moved to {}.1", format_size(r.removed), name);
    else if (r.discarded > 0)
        text += fmt::format("{} discarded without keeping it", format_size(r.discarded));
    else
        text += fmt::format("{} dropped (log_keep = 0)", format_size(r.removed));
    if (!r.collapsed && verbose)
        text += fmt::format(" by copy and truncate (COLLAPSE_RANGE unavailable: {}); output written during the copy may be lost",
                            r.fallback_reason);
    if (r.deleted_files > 0)
        text += fmt::format("; deleted the {} oldest kept file{} ({}) to make room", r.deleted_files, r.deleted_files == 1 ? "" : "s",
                            format_size(r.deleted_bytes));
    if (r.lost_kept_output()) text += fmt::format(": the filesystem is full ({})", r.full_reason);
    return text;
}

} // namespace llmctl
