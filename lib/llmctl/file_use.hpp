#pragma once
// The state files this process has open through SQLite, so that llmctl's own look at a file
// (check_state_file reads its header) never closes a descriptor of a file in use: closing any
// descriptor of a file drops every POSIX lock the process holds on it, those of SQLite's
// connections in other threads included (`llmctl serve`), and another process may then write
// under their feet (SQLite's "How To Corrupt An SQLite Database File", 2.2).

#include <sys/types.h>

namespace llmctl {

// While it lives, this process has (or is opening) a connection to the file (dev, ino). Taken
// before the open, dropped after the close.
class FileUse {
public:
    FileUse() = default;
    FileUse(dev_t dev, ino_t ino);
    FileUse(FileUse&& o) noexcept;
    FileUse& operator=(FileUse&& o) noexcept;
    FileUse(const FileUse&) = delete;
    ~FileUse();

private:
    void drop() noexcept;
    bool held_ = false;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
};

// Opens `path` read-only for a look at its bytes; returns the descriptor (-1 with errno) and
// whether the caller must give it back with close_unless_in_use (false: a kept one, never
// closed). One at a time, so that many threads do not each keep one.
struct CheckDescriptor {
    int fd = -1;
    bool owned = false;
    dev_t dev = 0;
    ino_t ino = 0;
};
CheckDescriptor open_for_check(const char* path);

// Closes a descriptor from open_for_check, unless a connection of this process uses its file:
// then it is kept (open_for_check hands it out again) and never closed.
void close_unless_in_use(const CheckDescriptor& d);

} // namespace llmctl
