#include "llmctl/errors.hpp"
#include "llmctl/gguf.hpp"
#include "gguf_writer.hpp"
#include "temp_dir.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <string>
#include <sys/stat.h>
#include <vector>

using namespace llmctl;
using llmctl::test_support::GgufWriter;
using llmctl::test_support::GiB;

namespace {

std::string error_of(const std::string& path) {
    try {
        read_gguf_shape(path);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::config);
        return e.what();
    }
    return "(no error)";
}

} // namespace

TEST(Gguf, ReadsTheShapeOfModelsLikeLlama7B13BAnd70B) {
    test_support::TempDir dir;
    struct Case {
        std::uint32_t layers, embd, heads, kv_heads;
        std::uint64_t size;
    };
    for (const Case& c : {Case{32, 4096, 32, 32, 3'800'000'000}, Case{40, 5120, 40, 40, 7'300'000'000}, Case{80, 8192, 64, 8, 39 * GiB}}) {
        const std::string path = dir.path + "/m.gguf";
        GgufWriter().llama(c.layers, c.embd, c.heads, c.kv_heads, 4096).write(path, c.size);
        const GgufShape s = read_gguf_shape(path);
        EXPECT_EQ(s.architecture, "llama");
        EXPECT_EQ(s.block_count, c.layers);
        EXPECT_EQ(s.context_length, 4096u);
        EXPECT_EQ(s.embedding_length, c.embd);
        EXPECT_EQ(s.head_count, c.heads);
        EXPECT_EQ(s.kv_heads_total, std::uint64_t{c.kv_heads} * c.layers);
        EXPECT_EQ(s.key_length, 128u); // embedding / heads
        EXPECT_EQ(s.value_length, 128u);
        EXPECT_EQ(s.file_size, c.size);
        struct stat st {};
        ASSERT_EQ(::stat(path.c_str(), &st), 0);
        EXPECT_LT(static_cast<std::uint64_t>(st.st_blocks) * 512, 1u << 20); // (sparse: no weights were written)
    }
}

TEST(Gguf, HeadLengthsAndPerLayerHeadsComeFromTheHeaderWhenItSaysThem) {
    test_support::TempDir dir;
    const std::string path = dir.path + "/m.gguf";
    GgufWriter()
        .u64("gemma.block_count", 4)          // (any integer type)
        .str("general.architecture", "gemma") // (after the keys that need it)
        .i32("gemma.embedding_length", 3072)
        .u32("gemma.attention.head_count", 16)
        .u32s("gemma.attention.head_count_kv", {0, 8, 8, 16}) // a layer with no attention, layers that vary
        .u32("gemma.attention.key_length", 256)
        .u32("gemma.attention.value_length", 192)
        .write(path, 5 * GiB);
    const GgufShape s = read_gguf_shape(path);
    EXPECT_EQ(s.kv_heads_total, 32u);
    EXPECT_EQ(s.key_length, 256u);
    EXPECT_EQ(s.value_length, 192u);
    EXPECT_EQ(s.context_length, 0u); // not said
}

TEST(Gguf, AModelWithoutAttentionHasNoKeyValueHeads) {
    test_support::TempDir dir;
    const std::string path = dir.path + "/m.gguf";
    GgufWriter().str("general.architecture", "mamba").u32("mamba.block_count", 64).u32("mamba.embedding_length", 2560).write(path, GiB);
    const GgufShape s = read_gguf_shape(path);
    EXPECT_EQ(s.kv_heads_total, 0u);
    EXPECT_EQ(s.key_length, 0u);
}

TEST(Gguf, BadFilesAreRefusedWithTheFileAndWhatIsWrong) {
    test_support::TempDir dir;
    const std::string path = dir.path + "/m.gguf";
    EXPECT_NE(error_of(dir.path + "/missing.gguf").find("cannot read the model file " + dir.path + "/missing.gguf"), std::string::npos);
    GgufWriter::write_raw(path, "");
    EXPECT_NE(error_of(path).find(path + ": the file is empty"), std::string::npos);
    GgufWriter::write_raw(path, "PK\x03\x04 a zip, not a model");
    EXPECT_NE(error_of(path).find(path + ": not a GGUF model file"), std::string::npos);
    const GgufWriter good = GgufWriter().llama(32, 4096, 32, 32, 4096);
    GgufWriter::write_raw(path, good.header(1));
    EXPECT_NE(error_of(path).find("GGUF version 1: llmctl reads versions 2 and 3 (convert the model again)"), std::string::npos);
    GgufWriter::write_raw(path, good.header(0x03000000));
    EXPECT_NE(error_of(path).find("a big-endian GGUF file"), std::string::npos);
    const std::string whole = good.header();
    for (std::size_t cut : {std::size_t{10}, std::size_t{30}, whole.size() / 2, whole.size() - 1}) {
        GgufWriter::write_raw(path, whole.substr(0, cut));
        EXPECT_NE(error_of(path).find("the file ends inside its GGUF header (at byte"), std::string::npos) << cut;
    }
    GgufWriter().str("general.architecture", "llama").u32("llama.embedding_length", 4096).write(path, GiB);
    EXPECT_NE(error_of(path).find("its GGUF header has no llama.block_count"), std::string::npos);
    GgufWriter().u32("llama.block_count", 32).write(path, GiB);
    EXPECT_NE(error_of(path).find("names no general.architecture"), std::string::npos);
    GgufWriter().str("general.architecture", "llama").i32("llama.block_count", -1).u32("llama.embedding_length", 4096).write(path, GiB);
    EXPECT_NE(error_of(path).find("llama.block_count is negative"), std::string::npos);
    GgufWriter()
        .str("general.architecture", "llama")
        .u64("llama.block_count", 1ull << 20)
        .u32("llama.embedding_length", 4096)
        .write(path, GiB);
    EXPECT_NE(error_of(path).find("llama.block_count is 1048576 in its header: beyond any model"), std::string::npos);
    GgufWriter()
        .str("general.architecture", "llama")
        .u32("llama.block_count", 2)
        .u64("llama.embedding_length", 1ull << 40)
        .write(path, GiB);
    EXPECT_NE(error_of(path).find("llama.embedding_length is 1099511627776 in its header: beyond any model"), std::string::npos);
    GgufWriter().str("general.architecture", "llama").f32("llama.block_count", 32).write(path, GiB);
    EXPECT_NE(error_of(path).find("llama.block_count is not an integer"), std::string::npos);
    // A list claiming more items than the file holds is a short header, not an allocation.
    std::string huge = GgufWriter().strs("tokenizer.ggml.tokens", {}).header();
    huge.replace(huge.size() - 8, 8, std::string("\xff\xff\xff\xff\xff\xff\xff\x0f", 8));
    GgufWriter::write_raw(path, huge);
    EXPECT_NE(error_of(path).find("ends inside its GGUF header"), std::string::npos);
}
