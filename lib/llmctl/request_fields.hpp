#pragma once
// What `llmctl serve` reads of a model request's JSON body to route it: the top-level `model`
// and `stream`, the body checked whole (valid JSON, one value, nothing after it) without building
// it. A request whose body goes on as it came (the model's name unchanged) is never built as a
// document: building one cost more than the rest of routing.

#include <optional>
#include <string>
#include <string_view>

namespace llmctl {

struct RequestFields {
    bool object = false;              // the body is a JSON object
    std::optional<std::string> model; // the top-level "model", when it is a string
    bool stream = false;              // the top-level "stream" is true
};

// The fields of a JSON body, or nullopt when it is not JSON (a duplicate key counts as its last
// value, as a parsed document has it).
std::optional<RequestFields> read_request_fields(std::string_view body);

} // namespace llmctl
