// gguf_shape: what llmctl reads from GGUF headers, as JSON, for the test that cross-checks it
// with an independent parser (tests/integration/gguf_crosscheck.sh).
//   gguf_shape FILE...               one object per line: the file's shape (read_gguf_shape)
//   gguf_shape --estimate CWD ARG... the estimate for the command ARG... (estimate_memory)
// An error is printed as {"error": "..."}; the exit status is then 1.
#include "llmctl/errors.hpp"
#include "llmctl/gguf.hpp"
#include "llmctl/memory_estimate.hpp"

#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    using nlohmann::json;
    const std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (!args.empty() && args[0] == "--estimate" && args.size() >= 3) {
            const auto e = llmctl::estimate_memory({args.begin() + 2, args.end()}, args[1]);
            std::cout << json{{"model_file", e.model_file},
                              {"weights", e.weights},
                              {"context", e.context},
                              {"cache_type_k", e.cache_type_k},
                              {"cache_type_v", e.cache_type_v},
                              {"kv_cache", e.kv_cache},
                              {"compute", e.compute},
                              {"margin", e.margin},
                              {"total", e.total()}}
                             .dump()
                      << "\n";
            return 0;
        }
        for (const auto& file : args) {
            const auto s = llmctl::read_gguf_shape(file);
            std::cout << json{{"architecture", s.architecture},     {"block_count", s.block_count},
                              {"context_length", s.context_length}, {"embedding_length", s.embedding_length},
                              {"head_count", s.head_count},         {"kv_heads_total", s.kv_heads_total},
                              {"key_length", s.key_length},         {"value_length", s.value_length},
                              {"split_count", s.split_count},       {"file_size", s.file_size}}
                             .dump()
                      << "\n";
        }
    } catch (const llmctl::Error& e) {
        std::cout << json{{"error", e.what()}}.dump() << "\n";
        return 1;
    }
    return 0;
}
