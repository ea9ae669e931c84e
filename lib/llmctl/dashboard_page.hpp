#pragma once
// serve's dashboard page (GET /ui): lib/llmctl/dashboard.html, embedded at build time (CMake
// writes it into a raw string literal: no node toolchain, nothing fetched at run time).

#include <string_view>

namespace llmctl {

std::string_view dashboard_page();

} // namespace llmctl
