#include "llmctl/memory_estimate.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/gguf.hpp"

#include <array>
#include <charconv>
#include <filesystem>
#include <fmt/format.h>
#include <optional>

namespace llmctl {

namespace {

// ggml's block sizes: a q8_0 block holds 32 values in 34 bytes, and so on.
constexpr std::array<CacheType, 9> k_cache_types = {{{"f32", 4, 1},
                                                     {"f16", 2, 1},
                                                     {"bf16", 2, 1},
                                                     {"q8_0", 34, 32},
                                                     {"q4_0", 18, 32},
                                                     {"q4_1", 20, 32},
                                                     {"iq4_nl", 18, 32},
                                                     {"q5_0", 22, 32},
                                                     {"q5_1", 24, 32}}};

const std::string k_hint = "declare the model's memory instead (memory = \"9GiB\"), or see llmctl.toml(5), MEMORY";

// The flags read, each with its spellings.
struct Flags {
    std::optional<std::string> model, context, cache_k, cache_v;
    bool remote = false; // -hf / --hf-repo / -mu / --model-url: llama-server fetches the file itself
};

bool is_one_of(std::string_view arg, std::initializer_list<std::string_view> names) {
    for (auto n : names)
        if (arg == n) return true;
    return false;
}

Flags read_flags(const std::vector<std::string>& command) {
    Flags f;
    const auto take = [&](std::size_t& i, std::string_view flag, std::optional<std::string>& into) {
        if (i + 1 >= command.size())
            throw Error(Exit::config, fmt::format("memory = \"auto\": {} ends the command with no value after it", flag), k_hint);
        into = command[++i];
    };
    for (std::size_t i = 1; i < command.size(); ++i) {
        std::string_view a = command[i];
        std::optional<std::string> inline_value;
        if (const auto eq = a.find('='); a.starts_with("--") && eq != std::string_view::npos) {
            inline_value = std::string(a.substr(eq + 1));
            a = a.substr(0, eq);
        }
        std::optional<std::string>* into = nullptr;
        if (is_one_of(a, {"-m", "--model"}))
            into = &f.model;
        else if (is_one_of(a, {"-c", "--ctx-size"}))
            into = &f.context;
        else if (is_one_of(a, {"-ctk", "--cache-type-k"}))
            into = &f.cache_k;
        else if (is_one_of(a, {"-ctv", "--cache-type-v"}))
            into = &f.cache_v;
        else if (is_one_of(a, {"-hf", "-hfr", "--hf-repo", "-mu", "--model-url", "-dr", "--docker-repo"}))
            f.remote = true;
        if (!into) continue;
        if (inline_value)
            *into = *inline_value;
        else
            take(i, a, *into);
    }
    return f;
}

std::uint64_t context_of(const std::string& text) {
    std::uint64_t v = 0;
    const auto* end = text.data() + text.size();
    const auto [p, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc() || p != end)
        throw Error(Exit::config, fmt::format("memory = \"auto\": -c/--ctx-size {} is not a number of tokens", text), k_hint);
    return v;
}

const CacheType& cache_type_of(const std::optional<std::string>& name, std::string_view flag) {
    if (!name) return *find_cache_type("f16");
    if (const CacheType* t = find_cache_type(*name)) return *t;
    std::string known;
    for (const auto& t : k_cache_types) known += (known.empty() ? "" : ", ") + std::string(t.name);
    throw Error(Exit::config, fmt::format("memory = \"auto\": {} {} is not a cache type llama-server takes ({})", flag, *name, known),
                k_hint);
}

std::string model_path(const Flags& f, const std::string& cwd) {
    if (!f.model) {
        throw Error(Exit::config,
                    f.remote
                        ? "memory = \"auto\": the command has llama-server fetch its model (-hf, -mu): there is no local GGUF file to read"
                        : "memory = \"auto\": the command names no GGUF file (-m/--model PATH)",
                    k_hint);
    }
    std::filesystem::path p(*f.model);
    if (p.is_relative()) p = (cwd.empty() ? std::filesystem::current_path() : std::filesystem::path(cwd)) / p;
    return p.lexically_normal().string();
}

} // namespace

const CacheType* find_cache_type(std::string_view name) {
    for (const auto& t : k_cache_types)
        if (t.name == name) return &t;
    return nullptr;
}

MemoryEstimate estimate_memory(const std::vector<std::string>& command, const std::string& cwd) {
    const Flags f = read_flags(command);
    MemoryEstimate e;
    e.model_file = model_path(f, cwd);
    const CacheType& k = cache_type_of(f.cache_k, "-ctk/--cache-type-k");
    const CacheType& v = cache_type_of(f.cache_v, "-ctv/--cache-type-v");
    e.cache_type_k = std::string(k.name);
    e.cache_type_v = std::string(v.name);
    const GgufShape s = read_gguf_shape(e.model_file);
    e.weights = s.file_size;
    e.context = f.context ? context_of(*f.context) : 0;
    if (e.context == 0) e.context = s.context_length;
    if (e.context == 0 && s.kv_heads_total > 0)
        throw Error(Exit::config,
                    fmt::format("memory = \"auto\": {} does not say its trained context: give the command -c/--ctx-size", e.model_file),
                    k_hint);
    // (Checked roughly first: a context of billions or a damaged header would overflow the product.)
    const long double rough =
        static_cast<long double>(e.context) * static_cast<long double>(s.kv_heads_total) *
        (static_cast<long double>(s.key_length) * k.num / k.den + static_cast<long double>(s.value_length) * v.num / v.den);
    if (rough > 0x1p60L)
        throw Error(Exit::config,
                    fmt::format("memory = \"auto\": a KV cache of {:.3g} bytes for {} ({} tokens of context): beyond any machine",
                                static_cast<double>(rough), e.model_file, e.context),
                    k_hint);
    const std::uint64_t keys = e.context * s.kv_heads_total * s.key_length, values = e.context * s.kv_heads_total * s.value_length;
    e.kv_cache = keys * k.num / k.den + values * v.num / v.den;
    e.margin = k_margin_fixed + e.weights / k_margin_share;
    return e;
}

} // namespace llmctl
