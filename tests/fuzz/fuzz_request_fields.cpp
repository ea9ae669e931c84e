// libFuzzer target: serve's reading of a request body (the top-level "model" and "stream",
// without building the document) against the document nlohmann::json builds of the same bytes.
// Any difference is a request routed otherwise than its body says.
#include "llmctl/request_fields.hpp"

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string body(reinterpret_cast<const char*>(data), size);
    auto fields = llmctl::read_request_fields(body);
    auto doc = nlohmann::json::parse(body, nullptr, false);
    if (doc.is_discarded() != !fields) std::abort();
    if (!fields) return 0;
    if (doc.is_object() != fields->object) std::abort();
    if (!doc.is_object()) return 0;
    auto m = doc.find("model");
    const bool model_text = m != doc.end() && m->is_string();
    if (model_text != fields->model.has_value()) std::abort();
    if (model_text && m->get<std::string>() != *fields->model) std::abort();
    auto s = doc.find("stream");
    if ((s != doc.end() && s->is_boolean() && s->get<bool>()) != fields->stream) std::abort();
    return 0;
}
