#include "llmctl/errors.hpp"
#include "llmctl/memory_estimate.hpp"
#include "gguf_writer.hpp"
#include "temp_dir.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <gtest/gtest.h>
#include <map>
#include <string>
#include <vector>

using namespace llmctl;
using llmctl::test_support::GgufWriter;
using llmctl::test_support::GiB;

namespace {

constexpr std::uint64_t MiB = 1ull << 20;

// A directory with llama-shaped headers: 7B (32 layers, 32 KV heads), 13B (40, 40) and 70B (80
// layers, 8 KV heads: grouped-query attention), trained for 4,096 tokens, sized like Q4_K_M files.
struct Models {
    test_support::TempDir dir;
    std::string m7 = dir.path + "/llama-7b.gguf", m13 = dir.path + "/llama-13b.gguf", m70 = dir.path + "/llama-70b.gguf";
    Models() {
        GgufWriter().llama(32, 4096, 32, 32, 4096).write(m7, 4'080'000'000);
        GgufWriter().llama(40, 5120, 40, 40, 4096).write(m13, 7'870'000'000);
        GgufWriter().llama(80, 8192, 64, 8, 4096).write(m70, 41'420'000'000);
    }
};

std::string error_of(const std::vector<std::string>& command, const std::string& cwd = "") {
    try {
        estimate_memory(command, cwd);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::config);
        return e.what();
    }
    return "(no error)";
}

} // namespace

// The KV cache of the llama models at f16 is the well-known 0.5 MiB per token for 7B, 0.78 MiB
// for 13B and 0.16 MiB for 70B: context x layers x KV heads x 128 x 2 (keys and values) x 2 bytes.
TEST(MemoryEstimate, FollowsTheFormulaForLlamaShapedModels) {
    Models m;
    struct Case {
        std::string file;
        std::uint64_t layers, kv_heads, weights;
    };
    for (const Case& c : {Case{m.m7, 32, 32, 4'080'000'000}, Case{m.m13, 40, 40, 7'870'000'000}, Case{m.m70, 80, 8, 41'420'000'000}}) {
        const MemoryEstimate e = estimate_memory({"llama-server", "-m", c.file, "-c", "8192", "--port", "{port}"}, "");
        EXPECT_EQ(e.model_file, c.file);
        EXPECT_EQ(e.weights, c.weights);
        EXPECT_EQ(e.context, 8192u);
        EXPECT_EQ(e.kv_cache, 8192 * c.layers * c.kv_heads * 128 * 2 * 2) << c.file;
        EXPECT_FALSE(e.flash_attention);
        EXPECT_EQ(e.compute, 8192ull * 512 * (c.file == m.m70 ? 64 : c.file == m.m13 ? 40 : 32) * 4); // context x micro-batch x heads x 4
        EXPECT_EQ(e.margin, k_margin_fixed + c.weights / 20);
        EXPECT_EQ(e.total(), e.weights + e.kv_cache + e.compute + e.margin);
    }
    EXPECT_EQ(estimate_memory({"llama-server", "-m", m.m7, "-c", "4096"}, "").kv_cache, 2 * GiB);
    EXPECT_EQ(estimate_memory({"llama-server", "-m", m.m13, "-c", "4096"}, "").kv_cache, 3200 * MiB);
    EXPECT_EQ(estimate_memory({"llama-server", "-m", m.m70, "-c", "4096"}, "").kv_cache, 1280 * MiB);
}

TEST(MemoryEstimate, WithoutAContextTheModelsTrainedOneCounts) {
    Models m;
    EXPECT_EQ(estimate_memory({"llama-server", "-m", m.m7}, "").context, 4096u);
    EXPECT_EQ(estimate_memory({"llama-server", "--model", m.m7, "--ctx-size", "0"}, "").context, 4096u); // 0: from the model
    // -np divides the context among its slots: the total is what is allocated.
    EXPECT_EQ(estimate_memory({"llama-server", "--model", m.m7, "--ctx_size", "16384", "-np", "4"}, "").context, 16384u);
}

TEST(MemoryEstimate, QuantizedCacheTypesCountTheirBlocks) {
    Models m;
    // q8_0: 32 values in 34 bytes; q4_0: in 18.
    const MemoryEstimate e = estimate_memory({"llama-server", "-m", m.m7, "-c", "8192", "-ctk", "q8_0", "-ctv", "q4_0"}, "");
    EXPECT_EQ(e.cache_type_k, "q8_0");
    EXPECT_EQ(e.cache_type_v, "q4_0");
    const std::uint64_t values = 8192ull * 32 * 32 * 128; // of keys, and as many of values
    EXPECT_EQ(e.kv_cache, values * 34 / 32 + values * 18 / 32);
    EXPECT_EQ(estimate_memory({"llama-server", "-m", m.m7, "-c", "8192", "--cache-type-k", "f32"}, "").kv_cache, values * 4 + values * 2);
}

TEST(MemoryEstimate, ARelativeModelPathIsTheServersWorkingDirectorys) {
    Models m;
    EXPECT_EQ(estimate_memory({"llama-server", "-m", "llama-7b.gguf"}, m.dir.path).model_file, m.m7);
    EXPECT_EQ(estimate_memory({"llama-server", "-m", "./sub/../llama-7b.gguf"}, m.dir.path).model_file, m.m7);
    // Through a symlink, ".." leaves where the link points, as the server's open(2) does.
    std::filesystem::create_directories(m.dir.path + "/real/sub");
    std::filesystem::create_directory_symlink(m.dir.path + "/real/sub", m.dir.path + "/link");
    std::filesystem::rename(m.m7, m.dir.path + "/real/llama-7b.gguf");
    EXPECT_EQ(estimate_memory({"llama-server", "-m", "link/../llama-7b.gguf"}, m.dir.path).model_file, m.dir.path + "/real/llama-7b.gguf");
}

TEST(MemoryEstimate, CommandsItCannotReadSayWhatToChange) {
    Models m;
    EXPECT_NE(error_of({"llama-server", "--port", "8080"}).find("names no GGUF file (-m/--model PATH)"), std::string::npos);
    EXPECT_NE(error_of({"llama-server", "-hf", "ggml-org/gemma-3-1b-it-GGUF"}).find("has llama-server fetch its model"), std::string::npos);
    EXPECT_NE(error_of({"llama-server", "-c", "4096", "-m"}).find("-m ends the command with no value after it"), std::string::npos);
    EXPECT_NE(error_of({"llama-server", "-m", m.m7, "-c", "8k"}).find("-c/--ctx-size 8k is not a number of tokens"), std::string::npos);
    EXPECT_NE(error_of({"llama-server", "-m", m.m7, "-c", "-1"}).find("-c/--ctx-size -1 is not a number"), std::string::npos);
    EXPECT_NE(error_of({"llama-server", "-m", m.m7, "-ctv", "q3_k"})
                  .find("-ctv/--cache-type-v q3_k is not a cache type llama-server takes (f32, f16"),
              std::string::npos);
    EXPECT_NE(
        error_of({"llama-server", "-m", "nowhere.gguf"}, m.dir.path).find("cannot read the model file " + m.dir.path + "/nowhere.gguf"),
        std::string::npos);
    const std::string untrained = m.dir.path + "/untold.gguf";
    GgufWriter()
        .str("general.architecture", "llama")
        .u32("llama.block_count", 2)
        .u32("llama.embedding_length", 256)
        .u32("llama.attention.head_count", 2)
        .write(untrained, GiB);
    EXPECT_NE(error_of({"llama-server", "-m", untrained}).find("does not say its trained context: give the command -c/--ctx-size"),
              std::string::npos);
    EXPECT_EQ(estimate_memory({"llama-server", "-m", untrained, "-c", "100"}, "").kv_cache, 100u * 2 * 2 * 128 * 2 * 2);
    EXPECT_NE(error_of({"llama-server", "-m", m.m70, "-c", "2147483648"})
                  .find("-c/--ctx-size 2147483648 is not a number of tokens llama-server takes"),
              std::string::npos);
    // -hf with -m: llama-server downloads to the -m path, which is not there yet.
    EXPECT_NE(error_of({"llama-server", "-hf", "org/repo", "-m", m.dir.path + "/later.gguf"})
                  .find("downloads the model to " + m.dir.path + "/later.gguf"),
              std::string::npos);
}

TEST(MemoryEstimate, FlashAttentionSparesTheScoresBuffer) {
    Models m;
    const auto compute = [&](std::vector<std::string> extra) {
        std::vector<std::string> cmd = {"llama-server", "-m", m.m7, "-c", "4096"};
        cmd.insert(cmd.end(), extra.begin(), extra.end());
        return estimate_memory(cmd, "").compute;
    };
    EXPECT_EQ(compute({}), 4096ull * 512 * 32 * 4);
    EXPECT_EQ(compute({"-ub", "128"}), 4096ull * 128 * 32 * 4);
    EXPECT_EQ(compute({"-fa", "on"}), 0u);
    EXPECT_EQ(compute({"-fa", "--port", "1"}), 0u);                       // (a bare -fa, in versions where it took no value)
    EXPECT_EQ(compute({"--flash-attn", "auto"}), 4096ull * 512 * 32 * 4); // (auto may leave it off)
    EXPECT_EQ(compute({"-fa", "off"}), 4096ull * 512 * 32 * 4);
}

TEST(MemoryEstimate, DraftModelsProjectorsAndAdaptersCount) {
    Models m;
    const std::string mmproj = m.dir.path + "/mmproj.gguf", lora = m.dir.path + "/lora.gguf";
    test_support::GgufWriter::write_raw(mmproj, "x", 600 * MiB);
    test_support::GgufWriter::write_raw(lora, "x", 100 * MiB);
    const MemoryEstimate e = estimate_memory(
        {"llama-server", "-m", m.m70, "-c", "4096", "-fa", "on", "-md", m.m7, "-cd", "1024", "--mmproj", mmproj, "--lora", lora}, "");
    EXPECT_EQ(e.weights, 41'420'000'000ull + 4'080'000'000ull + 600 * MiB + 100 * MiB);
    EXPECT_EQ(e.kv_cache, 1280 * MiB + 512 * MiB); // 70B at 4,096 tokens, the 7B draft at 1,024
    EXPECT_EQ(estimate_memory({"llama-server", "-m", m.m70, "-c", "4096", "-md", m.m7}, "").kv_cache,
              1280 * MiB + 2 * GiB); // (its context)
    EXPECT_NE(error_of({"llama-server", "-m", m.m7, "--lora", "gone.gguf"}, m.dir.path)
                  .find("cannot read the adapter (--lora) " + m.dir.path + "/gone.gguf"),
              std::string::npos);
}

TEST(MemoryEstimate, TheModelsEnvironmentCountsUnlessAFlagSaysOtherwise) {
    Models m;
    const std::map<std::string, std::string> env = {
        {"LLAMA_ARG_MODEL", m.m13}, {"LLAMA_ARG_CTX_SIZE", "2048"}, {"LLAMA_ARG_FLASH_ATTN", "1"}};
    MemoryEstimate e = estimate_memory({"llama-server", "--port", "8080"}, "", env);
    EXPECT_EQ(e.model_file, m.m13);
    EXPECT_EQ(e.context, 2048u);
    EXPECT_TRUE(e.flash_attention);
    e = estimate_memory({"llama-server", "-m", m.m7}, "", env);
    EXPECT_EQ(e.model_file, m.m7); // (the flag wins)
    EXPECT_EQ(e.context, 2048u);
    EXPECT_NE(error_of({"llama-server"}, "").find("names no GGUF file"), std::string::npos);
}

// llmctl.toml(5), MEMORY, states the formula and works an example: the page's figures are the
// estimate's, and its margin's constants are the code's.
TEST(MemoryEstimate, TheManPagesWorkedExampleIsTheEstimate) {
    std::ifstream in(std::string(LLMCTL_SOURCE_DIR) + "/man/llmctl.toml.5.scd");
    ASSERT_TRUE(in) << "cannot read man/llmctl.toml.5.scd";
    const std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto stated = [&](const std::string& start) { // the figure after "= " on the line of `start`, in GiB
        const auto at = page.find(start, page.find("Worked example"));
        EXPECT_NE(at, std::string::npos) << start;
        const auto line = page.substr(at, page.find('\n', at) - at);
        return std::stod(line.substr(line.rfind("= ") + 2));
    };
    EXPECT_NE(page.find("margin   = 512 MiB + weights / 20"), std::string::npos);
    EXPECT_EQ(k_margin_fixed, 512 * MiB);
    EXPECT_EQ(k_margin_share, 20u);
    // "a 7B llama-style model, a 3.8 GiB Q4 file (32 layers, 32 KV heads each, key and value
    // length 128, 32 heads), with -c 8192 -fa on"
    ASSERT_NE(page.find("a 3.8 GiB Q4 file (32 layers, 32 KV heads each,\nkey and value length 128, 32 heads), with _-c 8192 -fa on_"),
              std::string::npos);
    test_support::TempDir dir;
    const std::string file = dir.path + "/7b.gguf";
    GgufWriter().llama(32, 4096, 32, 32, 4096).write(file, static_cast<std::uint64_t>(3.8 * GiB));
    const MemoryEstimate e = estimate_memory({"llama-server", "-m", file, "-c", "8192", "-fa", "on"}, "");
    const auto gib = [](std::uint64_t b) { return static_cast<double>(b) / GiB; };
    EXPECT_NEAR(gib(e.weights), stated("weights  = 3.8"), 0.05);
    EXPECT_NEAR(gib(e.kv_cache), stated("kv_cache = 8192"), 0.05);
    EXPECT_EQ(e.compute, 0u);
    EXPECT_NEAR(gib(e.margin), stated("margin   = 512 MiB + 3.8"), 0.005);
    EXPECT_NEAR(gib(e.total()), stated("memory   = 8.5"), 0.05);
    const MemoryEstimate no_fa = estimate_memory({"llama-server", "-m", file, "-c", "8192"}, "");
    EXPECT_NEAR(gib(no_fa.compute), 0.5, 1e-9); // "Without -fa on add 8192 x 512 x 32 x 4 = 0.5 GiB"
    EXPECT_NE(page.find("Without _-fa on_ add 8192 x 512 x 32 x 4 = 0.5 GiB"), std::string::npos);
}
