#include "llmctl/log_stream.hpp"

#include "llmctl/logfile.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace llmctl {

namespace {

constexpr std::uint64_t k_block = 64 * 1024; // backwards scan step
constexpr int k_pending_tries = 1000;        // × 10 ms: how long a reader waits out a rotation

} // namespace

LogStream::LogStream(std::string path, std::uint64_t removed) : path_(std::move(path)) {
    Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat sb {};
    if (!fd.valid() || ::fstat(fd.get(), &sb) != 0) return;
    live_ino_ = sb.st_ino;
    segments_.push_back({std::move(fd), removed, static_cast<std::uint64_t>(sb.st_size)});
}

std::uint64_t LogStream::end() const { return valid() ? segments_.front().begin + segments_.front().size : 0; }

bool LogStream::open_older() {
    const std::uint64_t newer_begin = segments_.back().begin;
    std::string name = path_ + "." + std::to_string(segments_.size());
    Fd fd(::open(name.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat sb {};
    if (!fd.valid() || ::fstat(fd.get(), &sb) != 0) return false;
    auto size = static_cast<std::uint64_t>(sb.st_size);
    // An empty file, or one larger than everything removed before its successor, is not part
    // of this log's history (files left by hand): the chain ends there.
    if (size == 0 || size > newer_begin) return false;
    segments_.push_back({std::move(fd), newer_begin - size, size});
    return true;
}

LogStream::Segment* LogStream::segment_at(std::uint64_t pos) {
    for (std::size_t k = 0;; ++k) {
        if (k == segments_.size() && !open_older()) return nullptr;
        if (pos >= segments_[k].begin) return &segments_[k];
    }
}

std::optional<std::string> LogStream::pread_segment(const Segment& s, std::uint64_t from, std::uint64_t to) {
    std::string out(static_cast<std::size_t>(to - from), '\0');
    std::size_t off = 0;
    while (off < out.size()) {
        ssize_t r = ::pread(s.fd.get(), out.data() + off, out.size() - off, static_cast<off_t>(from + off));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return std::nullopt;
        if (r == 0) break; // the live file was truncated meanwhile
        off += static_cast<std::size_t>(r);
    }
    out.resize(off);
    return out;
}

std::string LogStream::read(std::uint64_t& pos, std::size_t max) {
    if (!valid() || pos >= end()) return {};
    Segment* s = segment_at(pos);
    if (!s) { // older than the oldest kept byte: go on from there
        s = &segments_.back();
        pos = s->begin;
    }
    std::uint64_t to = std::min(s->begin + s->size, pos + max);
    return pread_segment(*s, pos - s->begin, to - s->begin).value_or(std::string());
}

std::string LogStream::read_to_end(std::uint64_t& pos) {
    std::string out;
    for (std::string chunk; !(chunk = read(pos, 1 << 20)).empty();) {
        pos += chunk.size();
        out += chunk;
    }
    return out;
}

std::uint64_t LogStream::last_lines_start(std::size_t n) {
    std::uint64_t pos = end();
    if (n == 0) return pos;
    std::size_t newlines = 0;
    bool last_byte = true; // a newline ending the stream ends the last line, it starts none
    while (pos > 0) {
        Segment* s = segment_at(pos - 1);
        if (!s) break; // fewer than n lines are kept: all of them
        std::uint64_t from = std::max(s->begin, pos > k_block ? pos - k_block : 0);
        auto buf = pread_segment(*s, from - s->begin, pos - s->begin);
        if (!buf || buf->size() != pos - from) break;
        for (std::size_t i = buf->size(); i-- > 0;) {
            if ((*buf)[i] == '\n' && !last_byte && ++newlines == n) return from + i + 1;
            last_byte = false;
        }
        pos = from;
    }
    return pos;
}

std::optional<LogTail> tail_log(const std::string& path, std::size_t n) {
    for (int tries = 0;; ++tries) {
        LogOffset before = read_offset(path);
        if (before.pending && tries < k_pending_tries) {
            ::usleep(10'000);
            continue;
        }
        LogStream stream(path, before.removed);
        if (!stream.valid()) return std::nullopt;
        std::uint64_t pos = stream.last_lines_start(n);
        LogTail tail{stream.read_to_end(pos), stream.end(), stream.live_inode()};
        // Read again when a rotation moved the bytes meanwhile (seqlock on the sidecar).
        if (read_offset(path) == before || tries >= k_pending_tries) return tail;
    }
}

} // namespace llmctl
