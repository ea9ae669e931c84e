#pragma once
// The shape of a model in a GGUF file (llama.cpp's format), read from the file's header: what
// sizes its KV cache (`memory = "auto"`, llmctl.toml(5)). Only the metadata at the front of the
// file is read, never the tensors after it.

#include <cstdint>
#include <string>

namespace llmctl {

struct GgufShape {
    std::string architecture;         // general.architecture: "llama", "qwen2", ...
    std::uint64_t block_count = 0;    // layers
    std::uint64_t context_length = 0; // the context the model was trained for (0: not said)
    std::uint64_t embedding_length = 0;
    std::uint64_t head_count = 0;     // attention heads (the first layer's, where each layer says its own)
    std::uint64_t kv_heads_total = 0; // key/value heads summed over the layers (head_count_kv; else head_count)
    std::uint64_t key_length = 0;     // per head: attention.key_length, else embedding_length / head_count
    std::uint64_t value_length = 0;   // per head: attention.value_length, else embedding_length / head_count
    std::uint64_t split_count = 1;    // files the model is split in (split.count; `path` must name the first)
    std::uint64_t file_size = 0;      // bytes of its files (every part of a split model): the weights, near enough
};

// Reads `path`'s header (and the sizes of a split model's other files). Throws Error(config)
// naming the file and what is wrong: not a regular file, not GGUF, a version or byte order it does
// not read, a header cut short, damaged or beyond any model, a key it needs missing or not a count
// (general.architecture, ARCH.block_count, ARCH.embedding_length; the heads where the model has
// attention), a part of a split model missing.
GgufShape read_gguf_shape(const std::string& path);

} // namespace llmctl
