#pragma once
// A server's log read as one stream of bytes: the kept old files NAME.log.K … NAME.log.1 and
// the live NAME.log, oldest first. Each old file holds exactly the bytes one rotation removed
// from the live file's head (logfile.hpp), and NAME.log.offset holds the total removed, so a
// position in the stream is absolute (bytes since the log began) and the old files chain back
// from that total. A rotation cuts the head at a block boundary, mid-line: reading the stream
// rather than the live file is what gives whole lines across a rotation.
//
// A LogStream is a snapshot between two rotations only if the caller checks the sidecar
// around its use (a seqlock): read_offset, not pending; open and read; read_offset again,
// and discard what was read when it changed.

#include "llmctl/fd.hpp"

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <sys/types.h>

namespace llmctl {

class LogStream {
public:
    // Opens the live file `path`, whose head `removed` bytes (the sidecar's total) were
    // rotated away; old files are opened when a read reaches back into them.
    LogStream(std::string path, std::uint64_t removed);

    // False when the live file could not be opened (no log yet).
    bool valid() const { return !segments_.empty(); }
    ino_t live_inode() const { return live_ino_; }
    // Absolute position just past the live file's last byte when it was opened.
    std::uint64_t end() const;

    // Up to `max` bytes starting at absolute `pos`, from the one file that holds `pos`. When
    // `pos` is older than the oldest kept byte (beyond log_keep, or discarded on a full disk)
    // the bytes start at the oldest kept one instead: `pos` is moved there.
    std::string read(std::uint64_t& pos, std::size_t max);

    // Everything from absolute `pos` to end(), `pos` moved as read() does.
    std::string read_to_end(std::uint64_t& pos);

    // The absolute position where the last `n` lines begin, reading back across old files
    // as far as they are kept (their oldest byte when the stream holds fewer lines). A final
    // line without a newline counts as a line.
    std::uint64_t last_lines_start(std::size_t n);

private:
    struct Segment {
        Fd fd;
        std::uint64_t begin = 0, size = 0;
    };
    // The segment holding `pos`, opening older files as needed; nullptr when it is not kept.
    Segment* segment_at(std::uint64_t pos);
    bool open_older();
    // Bytes [from, to) of one segment, or nullopt on a read error.
    static std::optional<std::string> pread_segment(const Segment& s, std::uint64_t from, std::uint64_t to);

    std::string path_;
    std::deque<Segment> segments_; // [0] the live file, [k] NAME.log.k (a deque: pointers stay valid)
    ino_t live_ino_ = 0;
};

// The last `n` lines of the log at `path`, read across rotations (see LogStream), and the
// absolute end position they reach (where a follower goes on). Waits while a rotation is
// moving bytes. nullopt when there is no log.
struct LogTail {
    std::string text;
    std::uint64_t end = 0;
    ino_t ino = 0; // the live file's
};
std::optional<LogTail> tail_log(const std::string& path, std::size_t n);

} // namespace llmctl
