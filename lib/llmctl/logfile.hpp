#pragma once
// Server logs: lossless rotation while the server keeps writing through its O_APPEND fd.
//
// The live file is never renamed away. Its head (block-aligned) is copied to NAME.log.1 (older
// files shift to .2 … .keep) and then removed in place with fallocate(FALLOC_FL_COLLAPSE_RANGE),
// which ext4 and xfs support: nothing the server writes meanwhile is lost. Where collapse is
// unsupported (tmpfs, overlayfs: EOPNOTSUPP) it falls back to copy + truncate, which loses what
// the server writes between the copy and the truncate (a window of one copy). A per-log lock
// (NAME.log.lock) serialises rotations, never the state lock. NAME.log.offset holds the
// cumulative number of bytes removed from the head, so a follower can tell a collapse from new
// output, and the old files plus the live file read as one stream (log_stream.hpp).

#include <cstdint>
#include <string>

namespace llmctl {

struct RotateResult {
    bool rotated = false;
    bool collapsed = false;     // true: lossless collapse; false: copytruncate fallback
    std::uint64_t removed = 0;  // bytes removed from the head of the live file
    std::string fallback_reason; // why collapse was not used, if it was not
};

// Rotates `path` when it is larger than `max_size`, keeping `keep` older files. With
// `force`, rotates whatever the size (logs --rotate). Throws Error(failure) on I/O errors.
RotateResult rotate_log(const std::string& path, std::uint64_t max_size, int keep, bool force = false);

// Cumulative bytes removed from the head of `path` by rotations (0 when never rotated).
std::uint64_t removed_bytes(const std::string& path);

// The sidecar as a follower sees it. A rotation marks it `pending` before it touches the live
// file and writes the new total after, so a follower reads like a seqlock: offset, data,
// offset again; data read while the two differ (or while pending) is discarded and re-read.
struct LogOffset {
    std::uint64_t removed = 0;
    bool pending = false;
    bool operator==(const LogOffset&) const = default;
};
LogOffset read_offset(const std::string& path);

} // namespace llmctl
