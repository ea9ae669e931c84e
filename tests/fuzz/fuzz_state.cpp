// libFuzzer target: a mutated state file. Checking, opening, reading the rows and opening for
// writing (which migrates) either work or throw a clean llmctl::Error (a corrupt file, or a schema
// version above this llmctl's: Exit::newer_state); never a crash or another exception.
#include "llmctl/errors.hpp"
#include "llmctl/servers.hpp"
#include "llmctl/store.hpp"

#include "scratch_dir.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string dir = fuzz_support::scratch_dir("llmctl-fuzz-state");
    const std::string path = dir + "/state.db";
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::remove((path + suffix).c_str());
    if (FILE* f = std::fopen(path.c_str(), "wb")) {
        std::fwrite(data, 1, size, f);
        std::fclose(f);
    }
    try {
        (void)llmctl::check_state_file(path);
        if (auto store = llmctl::Store::open_read(path)) {
            for (const auto& row : llmctl::load_servers(*store)) (void)llmctl::effective_status(row);
        }
        auto w = llmctl::Store::open_write(path);
        (void)llmctl::load_servers(w);
    } catch (const llmctl::Error& e) {
        if (e.code() != llmctl::Exit::failure && e.code() != llmctl::Exit::newer_state) std::abort();
    }
    return 0;
}
