#include "llmctl/gguf.hpp"

#include "llmctl/errors.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <tuple>
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
constexpr std::uint64_t k_longest_architecture = 256;
// Beyond any model (the largest have a few hundred layers, a context of millions, vocabularies of
// a few hundred thousand): a header that says more is damaged, and its products would overflow.
constexpr std::uint64_t k_most_layers = 1u << 16, k_largest_count = 1ull << 32, k_most_items = 1ull << 24;

// The fixed size of a value of type `t`, or 0 for strings and arrays (and unknown types).
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

// The keys read, by the end of their name (after "ARCH."): counts, one per layer where an array.
constexpr std::array<std::string_view, 7> k_wanted = {".block_count",           ".context_length",          ".embedding_length",
                                                      ".attention.head_count",  ".attention.head_count_kv", ".attention.key_length",
                                                      ".attention.value_length"};

class HeaderReader {
public:
    explicit HeaderReader(const std::string& path) : path_(path), buffer_(1 << 16) {
        // (Checked before the open: a named pipe would block it, a directory would read as a file.)
        std::error_code ec;
        const auto kind = std::filesystem::status(path, ec).type();
        if (kind != std::filesystem::file_type::regular && kind != std::filesystem::file_type::not_found && !ec)
            fail(kind == std::filesystem::file_type::directory ? "a directory, not a model file" : "not a regular file");
        in_.rdbuf()->pubsetbuf(buffer_.data(), static_cast<std::streamsize>(buffer_.size())); // (before the open)
        in_.open(path, std::ios::binary);
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

    // A string of at most `longest` bytes (a longer one: the header is not one llmctl reads).
    std::string read_string(std::uint64_t longest, std::string_view what) {
        const auto n = read<std::uint64_t>();
        if (n > longest) fail(fmt::format("{} {} bytes long at byte {} of its header: not a GGUF header llmctl reads", what, n, pos_));
        need(n);
        std::string s(n, '\0');
        in_.read(s.data(), static_cast<std::streamsize>(n));
        pos_ += n;
        return s;
    }

    // (Short skips read through the buffer: a vocabulary's strings cost no system call each.)
    void skip(std::uint64_t n) {
        need(n);
        if (n <= buffer_.size())
            in_.ignore(static_cast<std::streamsize>(n));
        else
            in_.seekg(static_cast<std::streamoff>(n), std::ios::cur);
        pos_ += n;
    }

    // An integer value of type `t`; nullopt (the value read past) when it is of another type.
    std::optional<std::int64_t> read_integer(Type t) {
        switch (t) {
        case Type::u8: return read<std::uint8_t>();
        case Type::u16: return read<std::uint16_t>();
        case Type::u32: return read<std::uint32_t>();
        case Type::u64: return static_cast<std::int64_t>(std::min<std::uint64_t>(read<std::uint64_t>(), INT64_MAX));
        case Type::i8: return read<std::int8_t>();
        case Type::i16: return read<std::int16_t>();
        case Type::i32: return read<std::int32_t>();
        case Type::i64: return read<std::int64_t>();
        default: skip_value(t); return std::nullopt;
        }
    }

    // An array's head: its items' type and count (of a type llama.cpp reads: no arrays of arrays).
    std::pair<Type, std::uint64_t> read_array_head() {
        const auto item = Type{read<std::uint32_t>()};
        const auto count = read<std::uint64_t>();
        if (fixed_size(item) == 0 && item != Type::string)
            fail(fmt::format("a list of {} at byte {} of its header: not a GGUF header llmctl reads",
                             item == Type::array ? "lists" : "unknown values", pos_));
        const std::uint64_t least = item == Type::string ? 8 : fixed_size(item); // (a string is at least its length)
        if (count > remaining() / least) short_header();
        if (item == Type::string && count > k_most_items) fail(fmt::format("a list of {} strings in its header: beyond any model", count));
        return {item, count};
    }

    void skip_value(Type t) {
        if (const auto n = fixed_size(t)) return skip(n);
        if (t == Type::string) return skip(read<std::uint64_t>());
        if (t != Type::array) fail(fmt::format("unknown value type {} at byte {} of its header", static_cast<std::uint32_t>(t), pos_));
        const auto [item, count] = read_array_head();
        if (item != Type::string) return skip(count * fixed_size(item));
        for (std::uint64_t i = 0; i < count; ++i) skip(read<std::uint64_t>());
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
    std::vector<char> buffer_;
    std::ifstream in_;
    std::uint64_t size_ = 0, pos_ = 0;
};

// A wanted key's values (one, or one per layer), or what is wrong with them. Keys of every
// namespace end the same way: only the model's architecture's are held to it.
struct Counts {
    std::vector<std::uint64_t> values;
    std::string problem;
};

struct Metadata {
    std::string architecture;
    std::uint64_t split_count = 1;
    std::map<std::string, Counts> counts;
};

Counts read_counts(HeaderReader& r, Type type, const std::string& key) {
    Counts c;
    std::uint64_t n = 1;
    Type item = type;
    if (type == Type::array) std::tie(item, n) = r.read_array_head();
    for (std::uint64_t i = 0; i < n; ++i) {
        const auto v = r.read_integer(item);
        if (!v && c.problem.empty())
            c.problem = fmt::format("{} is not {} in its header", key, type == Type::array ? "a list of counts" : "an integer");
        else if (v && *v < 0 && c.problem.empty())
            c.problem = fmt::format("{} is negative in its header ({})", key, *v);
        else if (v && static_cast<std::uint64_t>(*v) > k_largest_count && c.problem.empty())
            c.problem = fmt::format("{} is {} in its header: beyond any model", key, *v);
        else if (v)
            c.values.push_back(static_cast<std::uint64_t>(*v));
    }
    if (c.values.empty() && c.problem.empty()) c.problem = fmt::format("{} is an empty list in its header", key);
    return c;
}

Metadata read_metadata(HeaderReader& r) {
    if (r.size() == 0) r.fail("the file is empty: a download cut short?");
    const auto magic = r.read<std::uint32_t>();
    if (magic != k_magic) r.fail("not a GGUF model file (it does not begin with \"GGUF\")");
    const auto version = r.read<std::uint32_t>();
    if ((version & 0xffff) == 0 && version != 0) r.fail("a big-endian GGUF file: llmctl reads little-endian ones");
    if (version < 2 || version > 3)
        r.fail(fmt::format("GGUF version {}: llmctl reads versions 2 and 3{}", version, version == 1 ? " (convert the model again)" : ""));
    r.read<std::uint64_t>(); // the tensors' count
    const auto kv_count = r.read<std::uint64_t>();
    Metadata m;
    for (std::uint64_t i = 0; i < kv_count; ++i) {
        const std::string key = r.read_string(k_longest_key, "a key");
        const auto type = Type{r.read<std::uint32_t>()};
        const bool wanted = std::any_of(k_wanted.begin(), k_wanted.end(), [&](std::string_view end) { return key.ends_with(end); });
        if (key == "general.architecture" && type == Type::string) {
            m.architecture = r.read_string(k_longest_architecture, "general.architecture");
        } else if (key == "split.count" && type != Type::array) {
            const auto v = r.read_integer(type);
            if (!v || *v < 1 || *v > 99999) r.fail("split.count in its header is not a count of files");
            m.split_count = static_cast<std::uint64_t>(*v);
        } else if (wanted) {
            m.counts[key] = read_counts(r, type, key);
        } else {
            r.skip_value(type);
        }
    }
    return m;
}

// The files of a split model (llama.cpp's PREFIX-00001-of-00003.gguf, the first named), summed.
std::uint64_t split_files_size(const HeaderReader& r, const std::string& path, std::uint64_t count) {
    const std::string first_end = fmt::format("-00001-of-{:05d}.gguf", count);
    if (!path.ends_with(first_end))
        r.fail(fmt::format("the first of a model split in {} files, named PREFIX{}: name that one in the command", count, first_end));
    const std::string prefix = path.substr(0, path.size() - first_end.size());
    std::uint64_t total = 0;
    for (std::uint64_t i = 1; i <= count; ++i) {
        const std::string part = fmt::format("{}-{:05d}-of-{:05d}.gguf", prefix, i, count);
        std::error_code ec;
        const auto size = std::filesystem::file_size(part, ec);
        if (ec) r.fail(fmt::format("part {} of the model's {} files, {}: {}", i, count, part, ec.message()));
        total += size;
    }
    return total;
}

} // namespace

GgufShape read_gguf_shape(const std::string& path) {
    HeaderReader r(path);
    const Metadata m = read_metadata(r);
    GgufShape s;
    s.split_count = m.split_count; // (first: a split model's other files hold no metadata)
    s.file_size = m.split_count > 1 ? split_files_size(r, path, m.split_count) : r.size();
    s.architecture = m.architecture;
    if (s.architecture.empty()) r.fail("its GGUF header names no general.architecture");
    const auto get = [&](std::string_view end) -> const std::vector<std::uint64_t>* {
        auto it = m.counts.find(s.architecture + std::string(end));
        if (it == m.counts.end()) return nullptr;
        if (!it->second.problem.empty()) r.fail(it->second.problem);
        return &it->second.values;
    };
    // One count (a list's first, as llama.cpp takes a layer's count where it needs one).
    const auto one = [&](std::string_view end, bool needed) -> std::uint64_t {
        const auto* c = get(end);
        if (!c && needed) r.fail(fmt::format("its GGUF header has no {}{}", s.architecture, end));
        return c ? c->front() : 0;
    };
    s.block_count = one(".block_count", true);
    if (s.block_count > k_most_layers)
        r.fail(fmt::format("{}.block_count is {} in its header: beyond any model", s.architecture, s.block_count));
    s.embedding_length = one(".embedding_length", true);
    s.context_length = one(".context_length", false);
    s.head_count = one(".attention.head_count", false);
    // Key/value heads over the layers: one count for all, or one per layer (models that vary it).
    const auto* kv = get(".attention.head_count_kv");
    if (!kv) kv = get(".attention.head_count");
    if (kv && kv->size() == 1)
        s.kv_heads_total = kv->front() * s.block_count;
    else if (kv)
        s.kv_heads_total = std::accumulate(kv->begin(), kv->end(), std::uint64_t{0});
    if (s.kv_heads_total > 0) {
        if (s.head_count == 0) r.fail(fmt::format("its GGUF header has key/value heads but no {}.attention.head_count", s.architecture));
        // (llama.cpp: both lengths default to the embedding over the first layer's heads.)
        const std::uint64_t per_head = s.embedding_length / s.head_count;
        s.key_length = get(".attention.key_length") ? one(".attention.key_length", false) : per_head;
        s.value_length = get(".attention.value_length") ? one(".attention.value_length", false) : per_head;
    }
    return s;
}

} // namespace llmctl
