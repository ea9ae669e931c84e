#pragma once
// What `llmctl serve` reads of a model request's JSON body to route it: the top-level `model`
// and `stream`, the body checked whole (valid JSON, one value, nothing after it) without building
// it (Boost.JSON's parser, a handler that keeps two fields). A request whose body goes on as it
// came (the model's name unchanged) is never built as a document: building one cost more than
// the rest of routing.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace llmctl {

enum class BodyShape {
    object,     // a JSON object
    other_json, // JSON, not an object
    not_json,
    too_deep, // arrays and objects nested deeper than k_max_body_depth
};

// Beyond this, a body is refused rather than read (the parser recurses once a level: a body of
// ten million '[' would overflow a thread's stack); a tool's JSON schema nests a dozen deep.
constexpr std::size_t k_max_body_depth = 256;

struct RequestFields {
    BodyShape shape = BodyShape::not_json;
    std::optional<std::string> model; // the top-level "model", when it is a string
    bool stream = false;              // the top-level "stream" is true
};

// The fields of a body (a duplicate key counts as its last value, as a parsed document has it).
RequestFields read_request_fields(std::string_view body);

} // namespace llmctl
