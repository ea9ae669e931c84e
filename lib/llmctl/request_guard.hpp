#pragma once
// Who may ask `llmctl serve` (llmctl-serve(1), SECURITY): the Host a request names (against DNS
// rebinding), the Origin a browser sends (against cross-site requests) and the API key.

#include "llmctl/openai_error.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmctl {

struct GuardRules {
    std::string listen_host; // as bound: "127.0.0.1", "::1", "0.0.0.0", "::", "localhost"
    int listen_port = 0;
    std::vector<std::string> allowed_hosts; // more names for the Host header (no port)
    std::vector<std::string> cors_origins;  // "*" allows every origin
    std::string api_key;                    // "" = none asked
};

// The refusal for a request's Host and Origin headers, or nothing when they are fine.
std::optional<ApiError> check_host_and_origin(const GuardRules& rules, std::string_view host, std::string_view origin);

// The refusal for a request's Authorization header (401), or nothing: a key is asked and this is
// it (compared in constant time), or no key is asked.
std::optional<ApiError> check_api_key(const GuardRules& rules, std::string_view authorization);

// True for an Origin that `cors_origins` allows (the answer then carries CORS headers).
bool origin_allowed(const GuardRules& rules, std::string_view origin);

} // namespace llmctl
