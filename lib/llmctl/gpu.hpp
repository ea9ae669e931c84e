#pragma once
// A GPU's memory as nvidia-smi reports it (memory pools of kind "gpu", llmctl.toml(5)): the
// whole, and what given processes use. Each asks nvidia-smi once (at most 5 s); nullopt where it
// is not installed, fails, or answers something else.

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace llmctl {

// Whether nvidia-smi is on PATH.
bool nvidia_smi_installed();

// `nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits -i INDEX`, in bytes.
std::optional<std::uint64_t> gpu_memory_total(int index);

// The memory on GPU `index` of the compute processes among `pids` (--query-compute-apps), in
// bytes; 0 when none of them uses it.
std::optional<std::uint64_t> gpu_memory_of(int index, const std::vector<pid_t>& pids);

// The parsers, for tests: one number of MiB per line, and "PID, MiB" lines.
std::optional<std::uint64_t> parse_gpu_total(const std::string& csv);
std::optional<std::uint64_t> parse_gpu_apps(const std::string& csv, const std::vector<pid_t>& pids);

} // namespace llmctl
