#pragma once
// A model's memory estimated from its command (`memory = "auto"`, llmctl.toml(5)): the GGUF file
// the command names, read for its size and shape (gguf.hpp), and the flags of llama-server that
// size its KV cache. The estimate is
//
//   weights   the file's size
//   KV cache  context x (sum over layers of KV heads) x (key length x bytes of -ctk + value length x bytes of -ctv)
//   margin    k_margin_fixed + weights / k_margin_share (compute buffers, the runtime)
//
// where the context is -c/--ctx-size (in llama-server the total over all -np slots), or the
// model's trained context when -c is absent or 0 (llama-server's default: "0 = loaded from
// model"), and the cache types default to f16.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmctl {

struct MemoryEstimate {
    std::string model_file;    // absolute
    std::uint64_t weights = 0; // bytes
    std::uint64_t context = 0; // tokens
    std::string cache_type_k = "f16", cache_type_v = "f16";
    std::uint64_t kv_cache = 0; // bytes
    std::uint64_t margin = 0;   // bytes
    std::uint64_t total() const { return weights + kv_cache + margin; }
};

inline constexpr std::uint64_t k_margin_fixed = 512ull << 20;
inline constexpr std::uint64_t k_margin_share = 20; // (5% of the weights)

// Estimates from `command` (argv; a relative model path is taken from `cwd`, or the current
// directory when it is empty). Throws Error(config) saying what to change when the command names
// no local GGUF file (-m/--model), a value is not one llama-server takes, or the file cannot be
// read as GGUF.
MemoryEstimate estimate_memory(const std::vector<std::string>& command, const std::string& cwd);

// The cache types llama-server takes for -ctk/-ctv, and their bytes per element (num / den).
struct CacheType {
    std::string_view name;
    std::uint64_t num, den;
};
const CacheType* find_cache_type(std::string_view name);

} // namespace llmctl
