// llama-server's own routes beside the OpenAI ones, as far as a test of a pass-through needs them:
// GET /slots, GET /metrics, POST /tokenize.
#include "chat.hpp"
#include "http.hpp"
#include "json.hpp"

namespace mock {
namespace {

bool has_query_flag(std::string_view target, std::string_view flag) {
    auto q = target.find('?');
    if (q == std::string_view::npos) return false;
    std::string_view query = target.substr(q + 1);
    for (std::size_t begin = 0; begin <= query.size();) {
        std::size_t end = query.find('&', begin);
        if (end == std::string_view::npos) end = query.size();
        if (query.substr(begin, end - begin) == flag) return true;
        begin = end + 1;
    }
    return false;
}

} // namespace

Outcome handle_slots(tcp::socket& socket, const Request& request, ServerState& state) {
    const bool busy = state.chats_in_flight > 0;
    if (busy && has_query_flag(request.target(), "fail_on_no_slot=1"))
        return respond_json(socket, request, http::status::service_unavailable,
                            dump(Json{{"error", {{"code", 503}, {"message", "no slot available"}, {"type", "unavailable_error"}}}}));
    Json slot;
    slot["id"] = 0;
    slot["n_ctx"] = 4096;
    slot["is_processing"] = busy;
    return respond_json(socket, request, http::status::ok, dump(Json::array({slot})));
}

Outcome handle_metrics(tcp::socket& socket, const Request& request, ServerState& state) {
    std::string body = "# HELP llamacpp:requests_processing Number of requests processing.\n"
                       "# TYPE llamacpp:requests_processing gauge\n"
                       "llamacpp:requests_processing " +
                       std::to_string(state.chats_in_flight.load()) + "\n";
    return respond_text(socket, request, http::status::ok, "text/plain; version=0.0.4", std::move(body));
}

Outcome handle_tokenize(tcp::socket& socket, const Request& request, ServerState&) {
    std::string error;
    auto j = parse_object(request.body(), error);
    if (j && !j->value("content", Json()).is_string()) error = "'content' must be a string";
    if (!error.empty()) return respond_json(socket, request, http::status::bad_request, invalid_request_json(error));
    Json tokens = Json::array();
    for (const auto& token : tokenize(j->at("content").get<std::string>())) tokens.push_back(token.size());
    return respond_json(socket, request, http::status::ok, dump(Json{{"tokens", tokens}}));
}

} // namespace mock
