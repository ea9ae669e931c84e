#pragma once
// A model's memory estimated from its command (`memory = "auto"`, llmctl.toml(5)): the GGUF files
// the command names, read for their sizes and shapes (gguf.hpp), and the flags of llama-server that
// size its caches and buffers. The estimate is
//
//   weights   the sizes of the model's files: -m (every part of a split model), the draft model
//             -md, --mmproj, each --lora
//   KV cache  context x (sum over layers of KV heads) x (key length x bytes of -ctk + value length
//             x bytes of -ctv), and the draft model's at -cd (else the same context)
//   compute   without flash attention: context x min(-ub, context) x heads x 4 bytes (the attention
//             scores of one micro-batch, llama.cpp's largest buffer)
//   margin    k_margin_fixed + weights / k_margin_share (the other buffers, the runtime)
//
// The context is -c/--ctx-size (in llama-server the total over all -np slots), or the model's
// trained context when -c is absent or 0 (the newest llama-server's default; older ones took 4096,
// so the estimate is then high: give -c to make it exact). Flash attention counts as on only with
// `-fa on` (or a bare `-fa`, in versions where it took no value): `auto` may leave it off. Cache
// types default to f16, the micro-batch to 512. Each flag may come from its LLAMA_ARG_ variable in
// the model's `env` instead (a flag wins, as in llama-server). Sliding-window layers (Gemma 2 and 3)
// are counted at the whole context: high, never low.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmctl {

struct MemoryEstimate {
    std::string model_file; // absolute
    std::uint64_t weights = 0;
    std::uint64_t context = 0; // tokens
    std::string cache_type_k = "f16", cache_type_v = "f16";
    bool flash_attention = false;
    std::uint64_t kv_cache = 0;
    std::uint64_t compute = 0;
    std::uint64_t margin = 0;
    std::uint64_t total() const { return weights + kv_cache + compute + margin; }
};

inline constexpr std::uint64_t k_margin_fixed = 512ull << 20;
inline constexpr std::uint64_t k_margin_share = 20; // (5% of the weights)
inline constexpr std::uint64_t k_default_ubatch = 512;

// Estimates from `command` (argv) and the model's `env`; a relative path is taken from `cwd`, or
// the current directory when it is empty. Throws Error(config) saying what to change when the
// command names no local GGUF file (-m/--model), a value is not one llama-server takes, or a file
// cannot be read as GGUF.
MemoryEstimate estimate_memory(const std::vector<std::string>& command, const std::string& cwd,
                               const std::map<std::string, std::string>& env = {});

// Why `memory = "auto"` cannot work for this command, found without reading a file (no -m/--model,
// a flag without its value, a model llama-server fetches itself); nullopt when it names a local
// GGUF file. For the config's checks: estimate_memory itself reads the files when a server starts.
std::optional<std::string> why_not_estimable(const std::vector<std::string>& command, const std::map<std::string, std::string>& env);

// The cache types llama-server takes for -ctk/-ctv, and their bytes per element (num / den).
struct CacheType {
    std::string_view name;
    std::uint64_t num, den;
};
const CacheType* find_cache_type(std::string_view name);

} // namespace llmctl
