#include "llmctl/fault.hpp"

#include "llmctl/units.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <unistd.h>

namespace llmctl {

void fault_point(std::string_view point) {
    static const char* spec = std::getenv("LLMCTL_FAULT");
    if (!spec || !*spec) return;
    std::string_view all(spec);
    while (!all.empty()) {
        auto comma = all.find(',');
        std::string_view entry = all.substr(0, comma);
        all = comma == std::string_view::npos ? std::string_view() : all.substr(comma + 1);
        auto colon = entry.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view name = entry.substr(0, colon), arg = entry.substr(colon + 1);
        if (name == "crash-after" && arg == point) {
            ::kill(::getpid(), SIGKILL);
            ::pause();
        }
        if (name == point) {
            auto d = parse_duration(arg);
            if (!d && arg != "hold") continue;
            const char* notify = std::getenv("LLMCTL_FAULT_NOTIFY");
            if (notify && *notify) {
                if (FILE* f = std::fopen(notify, "a")) {
                    std::fprintf(f, "%.*s\n", static_cast<int>(point.size()), point.data());
                    std::fclose(f);
                }
            }
            if (d) {
                std::this_thread::sleep_for(*d);
            } else if (notify && *notify) {
                std::string release = std::string(notify) + ".release";
                for (int i = 0; i < 6000 && ::access(release.c_str(), F_OK) != 0; ++i)
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        }
    }
}

} // namespace llmctl
