#pragma once
// Notices that a config file changed (written in place, replaced by rename, removed or created),
// by polling stat(2): `llmctl serve` reloads its config when it does.

#include <string>
#include <sys/types.h>

namespace llmctl {

class ConfigWatch {
public:
    // Watches `path`; "" (the built-in config) never changes.
    explicit ConfigWatch(std::string path);

    // True once per change, when the file's identity, size or mtime differ from what the last
    // true (or the constructor) saw and have stayed so since the previous call: a file still
    // being written is reported when it settles, not half-written. Call it every 100 ms or so.
    bool changed();

private:
    struct Signature {
        bool exists = false;
        dev_t dev = 0;
        ino_t ino = 0;
        off_t size = 0;
        long long mtime_ns = 0;
        bool operator==(const Signature&) const = default;
    };
    Signature read() const;

    std::string path_;
    Signature seen_; // as of the last reported change
    Signature last_; // as of the previous call
};

} // namespace llmctl
