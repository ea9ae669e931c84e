#include "llmctl/openai_error.hpp"

#include <nlohmann/json.hpp>

namespace llmctl {

namespace {

nlohmann::json error_json(const ApiError& e) {
    return {{"error", {{"message", e.message}, {"type", e.type}, {"code", e.code.empty() ? nlohmann::json() : nlohmann::json(e.code)}}}};
}

} // namespace

std::string openai_error_body(const ApiError& e) { return error_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

std::string openai_error_event(const ApiError& e) { return "event: error\ndata: " + openai_error_body(e) + "\n\n"; }

ApiError api_error_from(const Error& e) {
    ApiError a;
    a.message = e.what();
    if (!e.hint().empty()) a.message += " (" + e.hint() + ")";
    switch (e.code()) {
    case Exit::timeout:
        a.status = 504;
        a.code = "timeout";
        break;
    case Exit::server:
        a.status = 502;
        a.code = "upstream_error";
        break;
    case Exit::unknown:
        a.status = 404;
        a.type = "invalid_request_error";
        a.code = "model_not_found";
        break;
    case Exit::newer_state: // the gateway stops within a second; a restarted (newer) one answers
        a.status = 503;
        a.code = "state_file_newer";
        a.retry_after = 1;
        break;
    case Exit::usage:
        a.status = 400;
        a.type = "invalid_request_error";
        break;
    case Exit::failure: // llmctl's own means failed (the state file busy or on a full disk): passing, try again
        a.status = 503;
        a.code = "service_unavailable";
        a.retry_after = 1;
        break;
    default: a.status = 500; break;
    }
    return a;
}

ApiError start_failure_error(const Error& e) {
    ApiError a = api_error_from(e);
    if (e.code() == Exit::server || e.code() == Exit::timeout) { // the model could not be started
        a.status = 503;
        a.code = "model_unavailable";
    }
    return a;
}

} // namespace llmctl
