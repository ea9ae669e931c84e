#include "llmctl/request_fields.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <cmath>

namespace llmctl {

namespace {

namespace json = boost::json;
using boost::system::error_code;

// Boost.JSON's SAX handler that keeps the top-level "model" and "stream" values and nothing
// else (a string may come in parts: one per escape).
struct FieldReader {
    constexpr static std::size_t max_object_size = std::size_t(-1);
    constexpr static std::size_t max_array_size = std::size_t(-1);
    constexpr static std::size_t max_key_size = std::size_t(-1);
    constexpr static std::size_t max_string_size = std::size_t(-1);

    enum class Field { none, model, stream };
    enum class Kind { other, yes, text };

    RequestFields out;
    int depth = 0;
    Field field = Field::none;
    std::string key, text; // a key, and the model's name, as their parts come

    bool on_document_begin(error_code&) { return true; }
    bool on_document_end(error_code&) { return true; }
    bool on_object_begin(error_code&) {
        if (depth == 0) out.shape = BodyShape::object;
        value(Kind::other);
        ++depth;
        return true;
    }
    bool on_object_end(std::size_t, error_code&) {
        --depth;
        return true;
    }
    bool on_array_begin(error_code&) {
        value(Kind::other);
        ++depth;
        return true;
    }
    bool on_array_end(std::size_t, error_code&) {
        --depth;
        return true;
    }
    bool on_key_part(json::string_view s, std::size_t, error_code&) {
        if (depth == 1) key.append(s.data(), s.size());
        return true;
    }
    bool on_key(json::string_view s, std::size_t, error_code&) {
        if (depth != 1) return true;
        key.append(s.data(), s.size());
        field = key == "model" ? Field::model : key == "stream" ? Field::stream : Field::none;
        key.clear();
        return true;
    }
    bool on_string_part(json::string_view s, std::size_t, error_code&) {
        if (depth == 1 && field == Field::model) text.append(s.data(), s.size());
        return true;
    }
    bool on_string(json::string_view s, std::size_t, error_code&) {
        if (depth == 1 && field == Field::model) text.append(s.data(), s.size());
        value(Kind::text);
        return true;
    }
    bool on_number_part(json::string_view, error_code&) { return true; }
    bool on_int64(std::int64_t, json::string_view, error_code&) { return value(Kind::other); }
    bool on_uint64(std::uint64_t, json::string_view, error_code&) { return value(Kind::other); }
    // A number beyond a double's range is refused, as nlohmann::json refuses it (a body renamed
    // for its model is built by it).
    bool on_double(double d, json::string_view, error_code&) { return !std::isinf(d) && value(Kind::other); }
    bool on_bool(bool b, error_code&) { return value(b ? Kind::yes : Kind::other); }
    bool on_null(error_code&) { return value(Kind::other); }
    bool on_comment_part(json::string_view, error_code&) { return true; }
    bool on_comment(json::string_view, error_code&) { return true; }

    // A value begins (or, for a string, ended): one of the top-level object's own is kept when
    // it is a field read (a later duplicate replaces it).
    bool value(Kind kind) {
        if (depth != 1 || field == Field::none) return true;
        if (field == Field::model)
            out.model = kind == Kind::text ? std::optional<std::string>(std::move(text)) : std::nullopt;
        else
            out.stream = kind == Kind::yes;
        text.clear();
        field = Field::none;
        return true;
    }
};

} // namespace

RequestFields read_request_fields(std::string_view body) {
    // A UTF-8 byte order mark before the value is skipped, as nlohmann::json (the rest of
    // llmctl's reader) skips it.
    if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
    json::parse_options options;
    options.max_depth = k_max_body_depth;
    json::basic_parser<FieldReader> parser(options);
    error_code ec;
    std::size_t used = parser.write_some(false, body.data(), body.size(), ec);
    RequestFields out = std::move(parser.handler().out);
    if (ec == json::error::too_deep)
        out.shape = BodyShape::too_deep;
    else if (ec || used != body.size())
        out.shape = BodyShape::not_json;
    else if (out.shape != BodyShape::object)
        out.shape = BodyShape::other_json;
    if (out.shape != BodyShape::object) {
        out.model.reset();
        out.stream = false;
    }
    return out;
}

} // namespace llmctl
