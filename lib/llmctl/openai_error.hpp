#pragma once
// Errors as OpenAI's API writes them, for `llmctl serve`: {"error":{"message","type","code"}}
// with the HTTP status a client's library maps to its exception types.

#include "llmctl/errors.hpp"

#include <optional>
#include <string>

namespace llmctl {

struct ApiError {
    int status = 500;
    std::string message;
    std::string type = "server_error"; // invalid_request_error, authentication_error, ...
    std::string code;                  // "" is null
    std::optional<int> retry_after;    // seconds, for 429 and 503
};

// The JSON body of an error answer.
std::string openai_error_body(const ApiError& e);

// The SSE event that ends a stream that had already begun when the error came.
std::string openai_error_event(const ApiError& e);

// An llmctl error met while serving a request, as the status the client gets: a server that
// cannot start or answer is 502/503, a timeout 504, a config problem 500.
ApiError api_error_from(const Error& e);

// A model's start that failed, as serve answers it: 503 model_unavailable for a server that could
// not start or a start that timed out, else as api_error_from.
ApiError start_failure_error(const Error& e);

} // namespace llmctl
