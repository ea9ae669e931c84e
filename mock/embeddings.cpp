#include "chat.hpp"
#include "http.hpp"

#include <array>
#include <cmath>
#include <cstring>

namespace mock {
namespace {

constexpr std::size_t k_dimensions = 8;

// A validated embeddings request, reduced to what the mock looks at.
struct EmbeddingRequest {
    std::vector<std::string> inputs;
    std::string model;   // "" when the client sent none
    bool base64 = false; // encoding_format "base64": each vector as base64 of little-endian float32s
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
    EmbeddingRequest request{std::move(*inputs), {}, false};
    if (auto model = j->find("model"); model != j->end() && model->is_string()) request.model = model->get<std::string>();
    if (auto f = j->find("encoding_format"); f != j->end() && f->is_string()) {
        if (*f == "base64")
            request.base64 = true;
        else if (*f != "float") {
            error = "'encoding_format' must be \"float\" or \"base64\"";
            return std::nullopt;
        }
    }
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

// The vector as the official clients ask for it by default: base64 of its float32s, little-endian.
std::string as_base64(const Json& vector) {
    static const char* k_digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string bytes;
    for (const auto& x : vector) {
        float f = static_cast<float>(x.get<double>());
        unsigned char b[4];
        std::memcpy(b, &f, 4); // x86 and arm64 are little-endian
        bytes.append(reinterpret_cast<const char*>(b), 4);
    }
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        std::uint32_t n = std::uint32_t(static_cast<unsigned char>(bytes[i])) << 16;
        if (i + 1 < bytes.size()) n |= std::uint32_t(static_cast<unsigned char>(bytes[i + 1])) << 8;
        if (i + 2 < bytes.size()) n |= static_cast<unsigned char>(bytes[i + 2]);
        out += k_digits[(n >> 18) & 63];
        out += k_digits[(n >> 12) & 63];
        out += i + 1 < bytes.size() ? k_digits[(n >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? k_digits[n & 63] : '=';
    }
    return out;
}

std::string embeddings_json(const EmbeddingRequest& request, std::string_view model) {
    Json data = Json::array();
    std::uint64_t tokens = 0;
    for (std::size_t i = 0; i < request.inputs.size(); ++i) {
        Json item;
        item["object"] = "embedding";
        item["index"] = i;
        Json vector = embedding_of(request.inputs[i]);
        if (request.base64)
            item["embedding"] = as_base64(vector);
        else
            item["embedding"] = std::move(vector);
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
