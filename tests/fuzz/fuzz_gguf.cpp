// libFuzzer target: a mutated GGUF model file. Reading its shape, and estimating a command's
// memory from it, either work or throw a clean llmctl::Error (config: the file is not one llmctl
// can read); never a crash, a hang or another exception.
#include "llmctl/errors.hpp"
#include "llmctl/gguf.hpp"
#include "llmctl/memory_estimate.hpp"

#include "scratch_dir.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string path = fuzz_support::scratch_dir("llmctl-fuzz-gguf") + "/model.gguf";
    if (FILE* f = std::fopen(path.c_str(), "wb")) {
        std::fwrite(data, 1, size, f);
        std::fclose(f);
    }
    try {
        (void)llmctl::read_gguf_shape(path);
        (void)llmctl::estimate_memory({"llama-server", "-m", path, "-c", "32768", "-ctk", "q8_0"}, "");
        (void)llmctl::estimate_memory({"llama-server", "-m", path}, "");
    } catch (const llmctl::Error& e) {
        if (e.code() != llmctl::Exit::config) std::abort();
    }
    return 0;
}
