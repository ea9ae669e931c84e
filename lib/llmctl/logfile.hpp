#pragma once
// Server logs: lossless rotation while the server keeps writing through its O_APPEND fd.
//
// The live file is never renamed away. Its head (block-aligned) is copied to NAME.log.1 (older
// files shift to .2 … .keep) and then removed in place with fallocate(FALLOC_FL_COLLAPSE_RANGE),
// which ext4 and xfs support: nothing the server writes meanwhile is lost. Where collapse is
// unsupported (tmpfs, overlayfs: EOPNOTSUPP) it falls back to copy + truncate, which loses what
// the server writes between the copy and the truncate (a window of one copy). A log of at most
// one block (st_blksize, 4 KiB on ext4) is never rotated, even when forced: there is no whole
// block to collapse, and copy + truncate would lose output on ext4 too. A per-log lock
// (NAME.log.lock) serialises rotations, never the state lock. NAME.log.offset holds the
// cumulative number of bytes removed from the head, so a follower can tell a collapse from new
// output, and the old files plus the live file read as one stream (log_stream.hpp).
//
// A full filesystem (ENOSPC, EDQUOT) does not stop a rotation, since rotating is how space is
// freed: the oldest kept files are deleted until the copy fits, and when none is left the head
// is removed without being kept (RotateResult says so). The old files are shifted only once the
// copy succeeded, and the sidecar never stays pending.

#include <cstdint>
#include <string>

namespace llmctl {

struct RotateResult {
    bool rotated = false;
    bool collapsed = false;      // true: lossless collapse; false: copytruncate fallback
    std::uint64_t removed = 0;   // bytes removed from the head of the live file
    std::string fallback_reason; // why collapse was not used, if it was not
    std::string not_rotated;     // why a log that is there was left as it is ("3.1KiB: a log of at most one block …")
    bool kept = false;           // the removed bytes are in NAME.log.1 (false: log_keep = 0, or discarded)
    // The filesystem was full: `full_reason` names the failing call ("write(/s/w.log.1.tmp):
    // No space left on device"); `deleted_files` oldest kept files (`deleted_bytes` in all)
    // were deleted to make room, and `discarded` bytes of the head (all of `removed`, when not
    // 0) were removed without being kept because nothing more could be deleted.
    std::string full_reason;
    int deleted_files = 0;
    std::uint64_t deleted_bytes = 0;
    std::uint64_t discarded = 0;
    // True when the rotation lost or deleted something the config asked to keep.
    bool lost_kept_output() const { return discarded > 0 || deleted_files > 0; }
};

// Rotates `path` when it is larger than `max_size`, keeping `keep` older files. With
// `force`, rotates whatever the size (logs --rotate), except that a log of at most one block
// is left as it is (`not_rotated` says so). Throws Error(failure) on I/O errors.
RotateResult rotate_log(const std::string& path, std::uint64_t max_size, int keep, bool force = false);

// One line saying what a rotation of `path` did, for logs --rotate and reap: where the bytes
// went (NAME.log.1, or dropped with log_keep = 0), the copytruncate fallback with its reason
// when `verbose`, and on a full filesystem what was deleted and discarded to make room.
std::string describe_rotation(const RotateResult& r, const std::string& path, bool verbose);

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
