#pragma once
// UTF-8 as RFC 3629 defines it (no overlong forms, no surrogates, nothing above U+10FFFF): the
// form JSON text must have. Prompts come from pipes and files in any encoding (`git diff` of a
// Latin-1 file), and model output is shown on terminals, so both are checked byte by byte here.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace llmctl {

// One step of decoding: a code point, a maximal ill-formed subsequence (Unicode's unit of
// replacement, at least 1 byte), or the valid start of a sequence cut off by the end of the input.
struct Utf8Step {
    enum Kind { valid, invalid, truncated } kind;
    std::size_t length;  // bytes this step covers
    char32_t code_point; // for `valid` only
};

// Decodes the sequence at the start of `s` (not empty).
Utf8Step decode_utf8(std::string_view s);

// The offset of the first byte that is not part of well-formed UTF-8, or nullopt when `s` is valid.
std::optional<std::size_t> first_invalid_utf8(std::string_view s);

// `s` with each maximal ill-formed subsequence replaced by U+FFFD (the W3C/Unicode practice),
// so a byte that starts a valid sequence is never swallowed by the invalid bytes before it.
std::string replace_invalid_utf8(std::string_view s);

} // namespace llmctl
