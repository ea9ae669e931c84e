#include "llmctl/request_fields.hpp"

#include <nlohmann/json.hpp>

namespace llmctl {

namespace {

using json = nlohmann::json;

// A SAX reader that keeps the top-level "model" and "stream" values and nothing else.
class FieldReader : public nlohmann::json_sax<json> {
public:
    explicit FieldReader(RequestFields& out) : out_(out) {}

    bool null() override { return value(Kind::other); }
    bool boolean(bool v) override { return value(v ? Kind::yes : Kind::other); }
    bool number_integer(number_integer_t) override { return value(Kind::other); }
    bool number_unsigned(number_unsigned_t) override { return value(Kind::other); }
    bool number_float(number_float_t, const string_t&) override { return value(Kind::other); }
    bool string(string_t& s) override { return value(Kind::text, &s); }
    bool binary(binary_t&) override { return value(Kind::other); }
    bool start_object(std::size_t) override {
        if (depth_ == 0) out_.object = true;
        value(Kind::other);
        ++depth_;
        return true;
    }
    bool key(string_t& k) override {
        if (depth_ == 1) field_ = k == "model" ? Field::model : k == "stream" ? Field::stream : Field::none;
        return true;
    }
    bool end_object() override {
        --depth_;
        return true;
    }
    bool start_array(std::size_t) override {
        value(Kind::other);
        ++depth_;
        return true;
    }
    bool end_array() override {
        --depth_;
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

private:
    enum class Field { none, model, stream };
    enum class Kind { other, yes, text };

    // A value begins: one of the top-level object's own is kept when it is a field read (a later
    // duplicate replaces it).
    bool value(Kind kind, string_t* s = nullptr) {
        if (depth_ != 1 || field_ == Field::none) return true;
        if (field_ == Field::model)
            out_.model = kind == Kind::text ? std::optional<std::string>(std::move(*s)) : std::nullopt;
        else
            out_.stream = kind == Kind::yes;
        field_ = Field::none;
        return true;
    }

    RequestFields& out_;
    int depth_ = 0;
    Field field_ = Field::none;
};

} // namespace

std::optional<RequestFields> read_request_fields(std::string_view body) {
    RequestFields out;
    FieldReader reader(out);
    if (!json::sax_parse(body.begin(), body.end(), &reader)) return std::nullopt;
    return out;
}

} // namespace llmctl
