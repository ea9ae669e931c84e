#include "chat.hpp"
#include "http.hpp"

#include <array>
#include <cmath>

namespace mock {
namespace {

constexpr std::size_t k_dimensions = 8;

// A validated embeddings request, reduced to what the mock looks at.
struct EmbeddingRequest {
    std::vector<std::string> inputs;
    std::string model; // "" when the client sent none
};

// input: a string or an array of strings, each embedded on its own.
std::optional<EmbeddingRequest> parse_embedding_request(std::string_view body, std::string& error) {
    auto j = parse_object(body, error);
    if (!j) return std::nullopt;
    auto inputs = string_or_strings(j->value("input", Json()));
    if (!inputs) {
        error = "'input' must be a string or a non-empty array of strings";
        return std::nullopt;
    }
    EmbeddingRequest request{std::move(*inputs), {}};
    if (auto model = j->find("model"); model != j->end() && model->is_string()) request.model = model->get<std::string>();
    return request;
}

// FNV-1a, 64 bits: the same for the same text on every run, build and machine (std::hash is not).
std::uint64_t fnv1a(std::string_view text) {
    std::uint64_t hash = 0xcbf29ce484222325ull;
    for (unsigned char c : text) hash = (hash ^ c) * 0x100000001b3ull;
    return hash;
}

// splitmix64: the next number of the sequence that state seeds.
std::uint64_t next_random(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// k_dimensions numbers drawn from the text's hash, scaled to length 1 as OpenAI's embeddings are.
Json embedding_of(std::string_view text) {
    std::uint64_t state = fnv1a(text);
    std::array<double, k_dimensions> vector{};
    double norm = 0;
    for (double& x : vector) {
        x = std::ldexp(static_cast<double>(next_random(state) >> 11), -52) - 1.0; // in [-1, 1)
        norm += x * x;
    }
    norm = std::sqrt(norm);
    Json j = Json::array();
    for (double x : vector) j.push_back(norm > 0 ? x / norm : 0.0);
    return j;
}

std::string embeddings_json(const EmbeddingRequest& request, std::string_view model) {
    Json data = Json::array();
    std::uint64_t tokens = 0;
    for (std::size_t i = 0; i < request.inputs.size(); ++i) {
        Json item;
        item["object"] = "embedding";
        item["index"] = i;
        item["embedding"] = embedding_of(request.inputs[i]);
        data.push_back(std::move(item));
        tokens += tokenize(request.inputs[i]).size();
    }
    Json usage;
    usage["prompt_tokens"] = tokens;
    usage["total_tokens"] = tokens;
    Json j;
    j["object"] = "list";
    j["data"] = std::move(data);
    j["model"] = model;
    j["usage"] = std::move(usage);
    return dump(j);
}

} // namespace

Outcome handle_embeddings(tcp::socket& socket, const Request& request, ServerState& state) {
    if (!state.loaded) return respond_json(socket, request, http::status::service_unavailable, loading_json());
    std::string error;
    auto parsed = parse_embedding_request(request.body(), error);
    if (!parsed) return respond_json(socket, request, http::status::bad_request, invalid_request_json(error));
    const std::string_view model = parsed->model.empty() ? std::string_view(state.options.model_name) : parsed->model;
    return respond_json(socket, request, http::status::ok, embeddings_json(*parsed, model));
}

} // namespace mock
