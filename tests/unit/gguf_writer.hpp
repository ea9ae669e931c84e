#pragma once
// Writes GGUF headers for tests (gguf_test, memory_estimate_test).

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace llmctl::test_support {

inline constexpr std::uint64_t GiB = 1ull << 30;

// Writes GGUF headers as llama.cpp's converter does (little-endian, version 3), then makes the
// file as large as the model's weights would be, sparse: no weights are ever written.
class GgufWriter {
public:
    GgufWriter& u32(const std::string& key, std::uint32_t v) { return kv(key, 4, pod(v)); }
    GgufWriter& u64(const std::string& key, std::uint64_t v) { return kv(key, 10, pod(v)); }
    GgufWriter& i32(const std::string& key, std::int32_t v) { return kv(key, 5, pod(v)); }
    GgufWriter& f32(const std::string& key, float v) { return kv(key, 6, pod(v)); }
    GgufWriter& boolean(const std::string& key, bool v) { return kv(key, 7, std::string(1, v ? 1 : 0)); }
    GgufWriter& str(const std::string& key, const std::string& v) { return kv(key, 8, string(v)); }
    GgufWriter& u32s(const std::string& key, const std::vector<std::uint32_t>& v) {
        std::string s = pod(std::uint32_t{4}) + pod(std::uint64_t{v.size()});
        for (auto x : v) s += pod(x);
        return kv(key, 9, s);
    }
    GgufWriter& strs(const std::string& key, const std::vector<std::string>& v) {
        std::string s = pod(std::uint32_t{8}) + pod(std::uint64_t{v.size()});
        for (const auto& x : v) s += string(x);
        return kv(key, 9, s);
    }
    // A llama-shaped model's keys, with a tokenizer's list and a float and a bool to skip.
    GgufWriter& llama(std::uint32_t layers, std::uint32_t embd, std::uint32_t heads, std::uint32_t kv_heads, std::uint32_t ctx) {
        std::vector<std::string> tokens;
        for (int i = 0; i < 3000; ++i) tokens.push_back("tok" + std::to_string(i));
        return str("general.architecture", "llama")
            .str("general.name", "test model")
            .u32("llama.context_length", ctx)
            .u32("llama.embedding_length", embd)
            .u32("llama.block_count", layers)
            .u32("llama.feed_forward_length", 4 * embd)
            .u32("llama.attention.head_count", heads)
            .u32("llama.attention.head_count_kv", kv_heads)
            .f32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
            .boolean("tokenizer.ggml.add_bos_token", true)
            .strs("tokenizer.ggml.tokens", tokens);
    }
    std::string header(std::uint32_t version = 3, std::uint32_t magic = 0x46554747) const {
        return pod(magic) + pod(version) + pod(std::uint64_t{291}) + pod(count_) + body_;
    }
    // Writes the header to `path` and sizes the file at `size` bytes.
    void write(const std::string& path, std::uint64_t size) const { write_raw(path, header(), size); }
    static void write_raw(const std::string& path, const std::string& bytes, std::uint64_t size = 0) {
        std::ofstream(path, std::ios::binary) << bytes;
        if (size > bytes.size()) std::filesystem::resize_file(path, size);
    }

private:
    template <class T>
    static std::string pod(T v) {
        return std::string(reinterpret_cast<const char*>(&v), sizeof v);
    }
    static std::string string(const std::string& s) { return pod(std::uint64_t{s.size()}) + s; }
    GgufWriter& kv(const std::string& key, std::uint32_t type, const std::string& value) {
        body_ += string(key) + pod(type) + value;
        ++count_;
        return *this;
    }
    std::string body_;
    std::uint64_t count_ = 0;
};

} // namespace llmctl::test_support
