#include "llmctl/gguf.hpp"

#include "llmctl/errors.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <numeric>
#include <vector>

namespace llmctl {

namespace {

// The header's value types (GGUF spec, "gguf_metadata_value_type").
enum class Type : std::uint32_t {
    u8 = 0,
    i8 = 1,
    u16 = 2,
    i16 = 3,
    u32 = 4,
    i32 = 5,
    f32 = 6,
    boolean = 7,
    string = 8,
    array = 9,
    u64 = 10,
    i64 = 11,
    f64 = 12
};

constexpr std::uint32_t k_magic = 0x46554747;  // "GGUF", little-endian
constexpr std::uint64_t k_longest_key = 65535; // (the spec's limit)
// Beyond any model (the largest have a few hundred layers, a context of millions): a header that
// says more is damaged, and its products would overflow.
constexpr std::uint64_t k_most_layers = 1u << 16, k_largest_count = 1ull << 32;

// The fixed size of a value of type `t`, or 0 for strings and arrays.
std::uint64_t fixed_size(Type t) {
    switch (t) {
    case Type::u8:
    case Type::i8:
    case Type::boolean: return 1;
    case Type::u16:
    case Type::i16: return 2;
    case Type::u32:
    case Type::i32:
    case Type::f32: return 4;
    case Type::u64:
    case Type::i64:
    case Type::f64: return 8;
    default: return 0;
    }
}

bool is_integer(Type t) { return fixed_size(t) > 0 && t != Type::f32 && t != Type::f64 && t != Type::boolean; }

// The keys read, by the end of their name (after "ARCH."): counts, one per layer where an array.
constexpr std::array<std::string_view, 7> k_wanted = {".block_count",           ".context_length",          ".embedding_length",
                                                      ".attention.head_count",  ".attention.head_count_kv", ".attention.key_length",
                                                      ".attention.value_length"};

class HeaderReader {
public:
    explicit HeaderReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
        if (!in_) throw Error(Exit::config, fmt::format("cannot read the model file {}: {}", path, std::strerror(errno)));
        in_.seekg(0, std::ios::end);
        size_ = static_cast<std::uint64_t>(in_.tellg());
        in_.seekg(0);
    }

    std::uint64_t size() const { return size_; }

    [[noreturn]] void fail(const std::string& what) const {
        throw Error(Exit::config, fmt::format("{}: {}", path_, what),
                    "check the model path in the command, or declare the model's memory (memory = \"9GiB\")");
    }

    template <class T>
    T read() {
        T v{};
        need(sizeof v);
        in_.read(reinterpret_cast<char*>(&v), sizeof v);
        pos_ += sizeof v;
        return v;
    }

    // A string (a key: at most k_longest_key bytes, or the header is not one).
    std::string read_string(bool key = false) {
        const auto n = read<std::uint64_t>();
        if (key && n > k_longest_key) fail(fmt::format("a key {} bytes long at byte {} of its header: not a GGUF header", n, pos_));
        need(n);
        std::string s(n, '\0');
        in_.read(s.data(), static_cast<std::streamsize>(n));
        pos_ += n;
        return s;
    }

    void skip(std::uint64_t n) {
        need(n);
        in_.seekg(static_cast<std::streamoff>(n), std::ios::cur);
        pos_ += n;
    }

    // An integer value of type `t` (refused when negative, or not an integer).
    std::uint64_t read_count(Type t, const std::string& key) {
        std::int64_t v = 0;
        switch (t) {
        case Type::u8: return read<std::uint8_t>();
        case Type::u16: return read<std::uint16_t>();
        case Type::u32: return read<std::uint32_t>();
        case Type::u64: return read<std::uint64_t>();
        case Type::i8: v = read<std::int8_t>(); break;
        case Type::i16: v = read<std::int16_t>(); break;
        case Type::i32: v = read<std::int32_t>(); break;
        case Type::i64: v = read<std::int64_t>(); break;
        default: fail(fmt::format("{} is not an integer in its header", key));
        }
        if (v < 0) fail(fmt::format("{} is negative in its header ({})", key, v));
        return static_cast<std::uint64_t>(v);
    }

    void skip_value(Type t, int depth = 0) {
        if (const auto n = fixed_size(t)) return skip(n);
        if (t == Type::string) return skip(read<std::uint64_t>());
        if (t != Type::array || depth > 2)
            fail(fmt::format("unknown value type {} at byte {} of its header", static_cast<std::uint32_t>(t), pos_));
        const auto item = Type{read<std::uint32_t>()};
        const auto count = read<std::uint64_t>();
        if (const auto n = fixed_size(item)) {
            if (count > remaining() / n) short_header();
            return skip(count * n);
        }
        if (count > remaining() / 8) short_header(); // (each item is at least a length)
        for (std::uint64_t i = 0; i < count; ++i) skip_value(item, depth + 1);
    }

private:
    std::uint64_t remaining() const { return size_ - pos_; }
    void need(std::uint64_t n) {
        if (n > remaining() || !in_) short_header();
    }
    [[noreturn]] void short_header() const {
        fail(fmt::format("the file ends inside its GGUF header (at byte {} of {}): a download cut short?", pos_, size_));
    }

    std::string path_;
    std::ifstream in_;
    std::uint64_t size_ = 0, pos_ = 0;
};

// A wanted key's values: one, or one per layer.
using Counts = std::vector<std::uint64_t>;

std::map<std::string, Counts> read_metadata(HeaderReader& r, std::string& architecture) {
    if (r.size() == 0) r.fail("the file is empty: a download cut short?");
    const auto magic = r.read<std::uint32_t>();
    if (magic != k_magic) r.fail("not a GGUF model file (it does not begin with \"GGUF\")");
    const auto version = r.read<std::uint32_t>();
    if ((version & 0xffff) == 0 && version != 0) r.fail("a big-endian GGUF file: llmctl reads little-endian ones");
    if (version < 2 || version > 3)
        r.fail(fmt::format("GGUF version {}: llmctl reads versions 2 and 3{}", version, version == 1 ? " (convert the model again)" : ""));
    r.read<std::uint64_t>(); // the tensors' count
    const auto kv_count = r.read<std::uint64_t>();
    std::map<std::string, Counts> found;
    for (std::uint64_t i = 0; i < kv_count; ++i) {
        const std::string key = r.read_string(true);
        const auto type = Type{r.read<std::uint32_t>()};
        if (key == "general.architecture" && type == Type::string) {
            architecture = r.read_string();
            continue;
        }
        const bool wanted = std::any_of(k_wanted.begin(), k_wanted.end(), [&](std::string_view end) { return key.ends_with(end); });
        if (!wanted) {
            r.skip_value(type);
        } else if (type == Type::array) {
            const auto item = Type{r.read<std::uint32_t>()};
            const auto count = r.read<std::uint64_t>();
            if (!is_integer(item) || count > 65536) r.fail(fmt::format("{} is not a list of counts in its header", key));
            Counts& c = found[key];
            for (std::uint64_t j = 0; j < count; ++j) c.push_back(r.read_count(item, key));
        } else {
            found[key] = {r.read_count(type, key)};
        }
    }
    return found;
}

} // namespace

GgufShape read_gguf_shape(const std::string& path) {
    HeaderReader r(path);
    GgufShape s;
    s.file_size = r.size();
    const auto found = read_metadata(r, s.architecture);
    if (s.architecture.empty()) r.fail("its GGUF header names no general.architecture");
    const auto get = [&](std::string_view end) -> const Counts* {
        auto it = found.find(s.architecture + std::string(end));
        return it == found.end() || it->second.empty() ? nullptr : &it->second;
    };
    const auto one = [&](std::string_view end, bool needed) -> std::uint64_t {
        const Counts* c = get(end);
        if (!c && needed) r.fail(fmt::format("its GGUF header has no {}{}", s.architecture, end));
        return c ? *std::max_element(c->begin(), c->end()) : 0;
    };
    for (const auto& [key, counts] : found)
        for (auto v : counts)
            if (v > k_largest_count) r.fail(fmt::format("{} is {} in its header: beyond any model", key, v));
    s.block_count = one(".block_count", true);
    if (s.block_count > k_most_layers)
        r.fail(fmt::format("{}.block_count is {} in its header: beyond any model", s.architecture, s.block_count));
    s.embedding_length = one(".embedding_length", true);
    s.context_length = one(".context_length", false);
    s.head_count = one(".attention.head_count", false);
    // Key/value heads over the layers: one count for all, or one per layer (models that vary it).
    const Counts* kv = get(".attention.head_count_kv");
    if (!kv) kv = get(".attention.head_count");
    if (kv && kv->size() == 1)
        s.kv_heads_total = kv->front() * s.block_count;
    else if (kv)
        s.kv_heads_total = std::accumulate(kv->begin(), kv->end(), std::uint64_t{0});
    if (s.kv_heads_total > 0) {
        if (s.head_count == 0) r.fail(fmt::format("its GGUF header has key/value heads but no {}.attention.head_count", s.architecture));
        const std::uint64_t per_head = s.embedding_length / s.head_count;
        s.key_length = get(".attention.key_length") ? one(".attention.key_length", false) : per_head;
        s.value_length = get(".attention.value_length") ? one(".attention.value_length", false) : s.key_length;
    }
    return s;
}

} // namespace llmctl
