// libFuzzer target: serve's reading of a request body (the top-level "model" and "stream",
// Boost.JSON's parser, without building the document) against the document nlohmann::json
// builds of the same bytes. Any difference is a request routed otherwise than its body says;
// the known ones are checked for what they are (a raw NUL, the depth limit, a huge exponent).
#include "llmctl/request_fields.hpp"

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

using llmctl::BodyShape;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string body(reinterpret_cast<const char*>(data), size);
    auto fields = llmctl::read_request_fields(body);
    if (fields.shape != BodyShape::object && (fields.model || fields.stream)) std::abort();
    // A raw NUL is never JSON (nlohmann's lexer takes it for the end of the input, and accepts
    // what came before it): the body is refused whole.
    if (body.find('\0') != std::string::npos) {
        if (fields.shape != BodyShape::not_json && fields.shape != BodyShape::too_deep) std::abort();
        return 0;
    }
    if (fields.shape == BodyShape::too_deep) { // (it must be deep: more '[' and '{' than the limit)
        if (body.size() < llmctl::k_max_body_depth) std::abort();
        return 0;
    }
    auto doc = nlohmann::json::parse(body, nullptr, false);
    // An exponent of ten digits or more (beyond an int): Boost.JSON refuses the number,
    // nlohmann::json reads 1e-9999999999 as 0.
    if (!doc.is_discarded() && fields.shape == BodyShape::not_json && std::regex_search(body, std::regex("[eE][-+]?[0-9]{10}")))
        return 0;
    if (doc.is_discarded() != (fields.shape == BodyShape::not_json)) std::abort();
    if (doc.is_discarded()) return 0;
    if (doc.is_object() != (fields.shape == BodyShape::object)) std::abort();
    if (!doc.is_object()) return 0;
    auto m = doc.find("model");
    const bool model_text = m != doc.end() && m->is_string();
    if (model_text != fields.model.has_value()) std::abort();
    if (model_text && m->get<std::string>() != *fields.model) std::abort();
    auto s = doc.find("stream");
    if ((s != doc.end() && s->is_boolean() && s->get<bool>()) != fields.stream) std::abort();
    return 0;
}
