#include "llmctl/memory_estimate.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/gguf.hpp"
#include "llmctl/paths.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
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

const std::string k_prefix = "memory = \"auto\": ";

[[noreturn]] void refuse(const std::string& what) { throw Error(Exit::config, k_prefix + what, k_hint); }

// What the command says, flag by flag.
struct Flags {
    std::optional<std::string> model, context, cache_k, cache_v, flash, ubatch, draft, draft_context, draft_cache_k, draft_cache_v, mmproj;
    std::vector<std::string> loras;
    bool remote = false; // -hf / -mu: llama-server fetches the model itself
};

// A flag with a value: its spellings, its variable, where it goes.
struct ValueFlag {
    std::initializer_list<std::string_view> names;
    std::string_view env;
    std::optional<std::string> Flags::*into;
};

const std::array<ValueFlag, 10> k_value_flags = {{
    {{"-m", "--model"}, "LLAMA_ARG_MODEL", &Flags::model},
    {{"-c", "--ctx-size"}, "LLAMA_ARG_CTX_SIZE", &Flags::context},
    {{"-ctk", "--cache-type-k"}, "LLAMA_ARG_CACHE_TYPE_K", &Flags::cache_k},
    {{"-ctv", "--cache-type-v"}, "LLAMA_ARG_CACHE_TYPE_V", &Flags::cache_v},
    {{"-ub", "--ubatch-size"}, "LLAMA_ARG_UBATCH", &Flags::ubatch},
    {{"-md", "--model-draft"}, "LLAMA_ARG_MODEL_DRAFT", &Flags::draft},
    {{"-cd", "--ctx-size-draft"}, "LLAMA_ARG_CTX_SIZE_DRAFT", &Flags::draft_context},
    {{"-ctkd", "--cache-type-k-draft"}, "", &Flags::draft_cache_k},
    {{"-ctvd", "--cache-type-v-draft"}, "", &Flags::draft_cache_v},
    {{"-mm", "--mmproj"}, "LLAMA_ARG_MMPROJ", &Flags::mmproj},
}};

bool is_one_of(std::string_view arg, std::initializer_list<std::string_view> names) {
    return std::find(names.begin(), names.end(), arg) != names.end();
}

// llama-server reads `--ctx_size` as `--ctx-size` (and takes no `--flag=value`).
std::string spelled(std::string_view arg) {
    std::string a(arg);
    if (a.starts_with("--")) std::replace(a.begin(), a.end(), '_', '-');
    return a;
}

Flags read_flags(const std::vector<std::string>& command, const std::map<std::string, std::string>& env) {
    Flags f;
    for (const auto& v : k_value_flags)
        if (auto it = env.find(std::string(v.env)); !v.env.empty() && it != env.end()) f.*v.into = it->second;
    if (auto it = env.find("LLAMA_ARG_FLASH_ATTN"); it != env.end()) f.flash = it->second;
    f.remote = env.contains("LLAMA_ARG_HF_REPO") || env.contains("LLAMA_ARG_MODEL_URL");
    const auto value_after = [&](std::size_t& i, std::string_view flag) -> std::string {
        if (i + 1 >= command.size()) refuse(fmt::format("{} ends the command with no value after it", flag));
        return command[++i];
    };
    for (std::size_t i = 1; i < command.size(); ++i) {
        const std::string a = spelled(command[i]);
        const auto v =
            std::find_if(k_value_flags.begin(), k_value_flags.end(), [&](const ValueFlag& vf) { return is_one_of(a, vf.names); });
        if (v != k_value_flags.end()) {
            f.*(v->into) = value_after(i, a);
        } else if (is_one_of(a, {"--lora"})) {
            f.loras.push_back(value_after(i, a));
        } else if (is_one_of(a, {"--lora-scaled"})) {
            f.loras.push_back(value_after(i, a));
            value_after(i, a); // (its scale)
        } else if (is_one_of(a, {"-fa", "--flash-attn"})) {
            // A value where the version takes one (on, off, auto), else the bare flag: on.
            const bool valued = i + 1 < command.size() && !command[i + 1].starts_with("-");
            f.flash = valued ? command[++i] : "on";
        } else if (is_one_of(a, {"-hf", "-hfr", "--hf-repo", "-mu", "--model-url"})) {
            f.remote = true;
        }
    }
    return f;
}

std::string no_model_reason(const Flags& f) {
    return f.remote ? "the command has llama-server fetch its model (-hf, -mu): there is no local GGUF file to read"
                    : "the command names no GGUF file (-m/--model PATH)";
}

std::uint64_t tokens_of(const std::string& text, std::string_view flag) {
    std::uint64_t v = 0;
    const auto* end = text.data() + text.size();
    const auto [p, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc() || p != end || v > INT32_MAX)
        refuse(fmt::format("{} {} is not a number of tokens llama-server takes", flag, text));
    return v;
}

const CacheType& cache_type_of(const std::optional<std::string>& name, std::string_view flag) {
    if (!name) return *find_cache_type("f16");
    if (const CacheType* t = find_cache_type(*name)) return *t;
    std::string known;
    for (const auto& t : k_cache_types) known += (known.empty() ? "" : ", ") + std::string(t.name);
    refuse(fmt::format("{} {} is not a cache type llama-server takes ({})", flag, *name, known));
}

bool flash_on(const std::optional<std::string>& v) { return v && (*v == "on" || *v == "1" || *v == "true" || *v == "enabled"); }

// As the server opens it: relative to its working directory (symlinks resolved before "..").
std::string absolute(const std::string& path, const std::string& cwd) {
    const std::filesystem::path p(path);
    return canonical_path(p.is_relative() && !cwd.empty() ? (std::filesystem::path(cwd) / p).string() : path);
}

std::uint64_t size_of(const std::string& path, std::string_view what) {
    std::error_code ec;
    const auto n = std::filesystem::file_size(path, ec);
    if (ec) refuse(fmt::format("cannot read the {} {}: {}", what, path, ec.message()));
    return n;
}

// One model's KV cache at `context` tokens (0: its trained context), checked roughly first: a
// context of billions or a damaged header would overflow the product.
std::uint64_t kv_cache_of(const GgufShape& s, const std::string& file, std::uint64_t& context, const CacheType& k, const CacheType& v) {
    if (context == 0) context = s.context_length;
    if (context == 0 && s.kv_heads_total > 0)
        refuse(fmt::format("{} does not say its trained context: give the command -c/--ctx-size", file));
    const long double rough =
        static_cast<long double>(context) * static_cast<long double>(s.kv_heads_total) *
        (static_cast<long double>(s.key_length) * k.num / k.den + static_cast<long double>(s.value_length) * v.num / v.den);
    if (rough > 0x1p60L)
        refuse(fmt::format("a KV cache of {:.3g} bytes for {} ({} tokens): beyond any machine", static_cast<double>(rough), file, context));
    const std::uint64_t keys = context * s.kv_heads_total * s.key_length, values = context * s.kv_heads_total * s.value_length;
    return keys * k.num / k.den + values * v.num / v.den;
}

} // namespace

const CacheType* find_cache_type(std::string_view name) {
    for (const auto& t : k_cache_types)
        if (t.name == name) return &t;
    return nullptr;
}

std::optional<std::string> why_not_estimable(const std::vector<std::string>& command, const std::map<std::string, std::string>& env) {
    try {
        if (const Flags f = read_flags(command, env); !f.model) return no_model_reason(f);
        return std::nullopt;
    } catch (const Error& e) {
        std::string why = e.what();
        return why.starts_with(k_prefix) ? why.substr(k_prefix.size()) : why;
    }
}

MemoryEstimate estimate_memory(const std::vector<std::string>& command, const std::string& cwd,
                               const std::map<std::string, std::string>& env) {
    const Flags f = read_flags(command, env);
    if (!f.model) refuse(no_model_reason(f));
    MemoryEstimate e;
    e.model_file = absolute(*f.model, cwd);
    if (f.remote && !std::filesystem::exists(e.model_file))
        refuse(
            fmt::format("llama-server downloads the model to {} (-hf, -mu) and it is not there yet: start the model once", e.model_file));
    const CacheType& k = cache_type_of(f.cache_k, "-ctk/--cache-type-k");
    const CacheType& v = cache_type_of(f.cache_v, "-ctv/--cache-type-v");
    e.cache_type_k = std::string(k.name);
    e.cache_type_v = std::string(v.name);
    e.flash_attention = flash_on(f.flash);
    const GgufShape s = read_gguf_shape(e.model_file);
    e.weights = s.file_size;
    e.context = f.context ? tokens_of(*f.context, "-c/--ctx-size") : 0;
    e.kv_cache = kv_cache_of(s, e.model_file, e.context, k, v);
    if (!e.flash_attention) {
        const std::uint64_t ubatch = f.ubatch ? tokens_of(*f.ubatch, "-ub/--ubatch-size") : k_default_ubatch;
        e.compute = e.context * std::min(ubatch, e.context) * s.head_count * 4;
    }
    if (f.draft) {
        const std::string file = absolute(*f.draft, cwd);
        const GgufShape d = read_gguf_shape(file);
        std::uint64_t context = f.draft_context ? tokens_of(*f.draft_context, "-cd/--ctx-size-draft") : 0;
        if (context == 0) context = e.context;
        e.weights += d.file_size;
        e.kv_cache += kv_cache_of(d, file, context, cache_type_of(f.draft_cache_k, "-ctkd/--cache-type-k-draft"),
                                  cache_type_of(f.draft_cache_v, "-ctvd/--cache-type-v-draft"));
    }
    if (f.mmproj) e.weights += size_of(absolute(*f.mmproj, cwd), "projector (--mmproj)");
    for (const auto& lora : f.loras) e.weights += size_of(absolute(lora, cwd), "adapter (--lora)");
    e.margin = k_margin_fixed + e.weights / k_margin_share;
    return e;
}

} // namespace llmctl
