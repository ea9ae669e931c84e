#include "llmctl/gpu.hpp"

#include "llmctl/spawn.hpp"
#include "llmctl/strings.hpp"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace llmctl {

namespace {

constexpr std::uint64_t k_mib = 1ull << 20;
const Millis k_timeout{5000}; // nvidia-smi can hang on a wedged driver: never a start with it

std::optional<std::uint64_t> number(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\r' || s.back() == '\t')) s.remove_suffix(1);
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

} // namespace

std::optional<std::uint64_t> parse_gpu_total(const std::string& csv) {
    std::istringstream in(csv);
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    auto mib = number(line);
    if (!mib || *mib == 0 || *mib > (1ull << 30)) return std::nullopt;
    return *mib * k_mib;
}

std::optional<std::uint64_t> parse_gpu_apps(const std::string& csv, const std::vector<pid_t>& pids) {
    std::istringstream in(csv);
    std::uint64_t total = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
        auto comma = line.find(',');
        if (comma == std::string::npos) return std::nullopt;
        auto pid = number(std::string_view(line).substr(0, comma));
        auto mib = number(std::string_view(line).substr(comma + 1));
        if (!pid) return std::nullopt;
        if (!mib) continue; // "[N/A]": nothing known of that process
        if (std::find(pids.begin(), pids.end(), static_cast<pid_t>(*pid)) != pids.end()) total += *mib * k_mib;
    }
    return total;
}

bool nvidia_smi_installed() { return on_path("nvidia-smi"); }

std::optional<std::uint64_t> gpu_memory_total(int index) {
    auto out =
        run_and_read({"nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", std::to_string(index)}, k_timeout);
    return out ? parse_gpu_total(*out) : std::nullopt;
}

std::optional<std::uint64_t> gpu_memory_of(int index, const std::vector<pid_t>& pids) {
    auto out = run_and_read(
        {"nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits", "-i", std::to_string(index)}, k_timeout);
    return out ? parse_gpu_apps(*out, pids) : std::nullopt;
}

} // namespace llmctl
