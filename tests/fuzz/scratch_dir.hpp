#pragma once
// A scratch directory of this fuzzing process's own (its files rewritten for every input), removed
// when the process exits normally; a crash keeps it, beside libFuzzer's crash file.

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <unistd.h>

namespace fuzz_support {

inline std::string& scratch_path() {
    static std::string path;
    return path;
}

// "<tmp>/NAME.PID", made on the first call.
inline const std::string& scratch_dir(const char* name) {
    std::string& path = scratch_path();
    if (path.empty()) {
        auto d = std::filesystem::temp_directory_path() / (std::string(name) + "." + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        path = d.string();
        std::atexit([] {
            std::error_code ignored;
            std::filesystem::remove_all(scratch_path(), ignored);
        });
    }
    return path;
}

} // namespace fuzz_support
