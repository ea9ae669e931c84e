#include "llmctl/errors.hpp"

#include <cstring>
#include <fmt/format.h>

namespace llmctl {

std::string sys_message(std::string_view call, std::string_view path, int err) {
    if (path.empty()) return fmt::format("{}: {}", call, std::strerror(err));
    return fmt::format("{}(\"{}\"): {}", call, path, std::strerror(err));
}

void throw_sys(std::string_view call, std::string_view path, int err) { throw Error(Exit::failure, sys_message(call, path, err)); }

} // namespace llmctl
