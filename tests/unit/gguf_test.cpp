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
    EXPECT_NE(error_of(dir.path).find(dir.path + ": a directory, not a model file"), std::string::npos);
    ASSERT_EQ(::mkfifo((dir.path + "/pipe.gguf").c_str(), 0600), 0);
    EXPECT_NE(error_of(dir.path + "/pipe.gguf").find("pipe.gguf: not a regular file"), std::string::npos); // (not a hang)
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

TEST(Gguf, ASplitModelIsItsFilesTogetherNamedByItsFirst) {
    test_support::TempDir dir;
    const std::string prefix = dir.path + "/big";
    for (int i = 1; i <= 3; ++i) {
        GgufWriter w;
        if (i == 1) w.llama(80, 8192, 64, 8, 4096);
        w.u32("split.no", static_cast<std::uint32_t>(i - 1)).u32("split.count", 3);
        w.write(prefix + "-0000" + std::to_string(i) + "-of-00003.gguf", 10 * GiB + static_cast<std::uint64_t>(i));
    }
    const GgufShape s = read_gguf_shape(prefix + "-00001-of-00003.gguf");
    EXPECT_EQ(s.split_count, 3u);
    EXPECT_EQ(s.file_size, 30 * GiB + 6);
    EXPECT_NE(error_of(prefix + "-00002-of-00003.gguf").find("the first of a model split in 3 files, named PREFIX-00001-of-00003.gguf"),
              std::string::npos);
    std::filesystem::remove(prefix + "-00003-of-00003.gguf");
    EXPECT_NE(
        error_of(prefix + "-00001-of-00003.gguf").find("part 3 of the model's 3 files, " + prefix + "-00003-of-00003.gguf: No such file"),
        std::string::npos);
}

TEST(Gguf, OnlyTheModelsOwnKeysAreHeldToBeingCounts) {
    test_support::TempDir dir;
    const std::string path = dir.path + "/m.gguf";
    GgufWriter()
        .llama(32, 4096, 32, 8, 4096)
        .str("general.context_length", "4k")               // another namespace's, not a count: no matter
        .u64("clip.vision.block_count", 1ull << 40)        // beyond any model, but not the model's
        .u32s("tokenizer.attention.head_count", {1, 2, 3}) // (a list where the model's is one count)
        .write(path, GiB);
    EXPECT_EQ(read_gguf_shape(path).kv_heads_total, 256u);
}

TEST(Gguf, DamagedHeadersAreRefusedBeforeTheyCostMemoryOrTime) {
    test_support::TempDir dir;
    const std::string path = dir.path + "/m.gguf";
    // An architecture a gigabyte long, in a sparse file that holds it.
    std::string h = GgufWriter().str("general.architecture", "llama").header();
    h.replace(h.size() - 5 - 8, 8, std::string("\x00\x00\x00\x40\x00\x00\x00\x00", 8));
    GgufWriter::write_raw(path, h, 2 * GiB);
    EXPECT_NE(error_of(path).find("general.architecture 1073741824 bytes long"), std::string::npos);
    // A vocabulary of 20 million strings (the holes read as empty ones).
    h = GgufWriter().strs("tokenizer.ggml.tokens", {}).header();
    h.replace(h.size() - 8, 8, std::string("\x00\x2d\x31\x01\x00\x00\x00\x00", 8));
    GgufWriter::write_raw(path, h, 200'000'000);
    EXPECT_NE(error_of(path).find("a list of 20000000 strings in its header: beyond any model"), std::string::npos);
    // Lists of lists, which llama.cpp does not read either.
    h = GgufWriter().u32s("x.list", {}).header();
    h.replace(h.size() - 12, 4, std::string("\x09\x00\x00\x00", 4));
    GgufWriter::write_raw(path, h);
    EXPECT_NE(error_of(path).find("a list of lists at byte"), std::string::npos);
}
