#pragma once
// `/upstream/NAME/PATH` (`llmctl serve`): a model's server's own API (llama-server's /completion,
// /tokenize, /slots, /metrics), PATH and its query passed on as they are. The one check: PATH
// must stay under the model's base (no dot segment, plain or percent-encoded, and no encoded or
// back slash), so that a target cannot climb out of an external model's URL base.

#include <string>
#include <string_view>

namespace llmctl {

enum class UpstreamProblem {
    none,
    no_path,     // nothing after /upstream/NAME: 404
    unsafe_path, // a dot segment or an encoded separator: 400
};

struct UpstreamRoute {
    std::string name; // NAME, as the target spells it
    std::string path; // "/PATH?QUERY", what the model's server is asked for ("" with a problem)
    UpstreamProblem problem = UpstreamProblem::none;
};

// True for a target under /upstream/.
bool is_upstream_target(std::string_view target);

// A target under /upstream/ split into NAME and the path its server is asked for.
UpstreamRoute parse_upstream_target(std::string_view target);

// True when `path` (from its leading '/' up to any '?') has no segment a server could resolve
// as "." or ".." (plain, percent-encoded, or with a ";parameter"), no encoded '/' or '\\', no
// '\\' and no encoded '%', no empty segment but the last and no malformed percent escape.
bool path_stays_under_base(std::string_view path);

} // namespace llmctl
