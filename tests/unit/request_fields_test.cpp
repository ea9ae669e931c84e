#include "llmctl/request_fields.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace llmctl;

TEST(RequestFields, ReadsTheTopLevelModelAndStream) {
    auto f = read_request_fields(R"({"model":"m1","stream":true,"messages":[{"role":"user","content":"hi"}]})");
    EXPECT_EQ(f.shape, BodyShape::object);
    EXPECT_EQ(f.model, "m1");
    EXPECT_TRUE(f.stream);
    f = read_request_fields(R"({"messages":[],"model":"m\u00e9\n","stream":false})");
    EXPECT_EQ(f.model, "m\xc3\xa9\n") << "an escaped name is read as its text";
    EXPECT_FALSE(f.stream);
}

TEST(RequestFields, NestedFieldsAreNotTheRequests) {
    auto f = read_request_fields(R"({"messages":[{"model":"inner","stream":true}],"options":{"model":"x"},"model":"outer"})");
    EXPECT_EQ(f.model, "outer");
    EXPECT_FALSE(f.stream);
    f = read_request_fields(R"({"a":{"model":"inner"}})");
    EXPECT_EQ(f.shape, BodyShape::object);
    EXPECT_FALSE(f.model);
}

TEST(RequestFields, AModelOrStreamOfAnotherTypeIsNone) {
    for (const char* body : {R"({"model":1})", R"({"model":null})", R"({"model":["m"]})", R"({"model":{"name":"m"}})", R"({"model":true})",
                             R"({"model":1.5e3})"}) {
        auto f = read_request_fields(body);
        EXPECT_EQ(f.shape, BodyShape::object) << body;
        EXPECT_FALSE(f.model) << body;
    }
    for (const char* body : {R"({"stream":"true"})", R"({"stream":1})", R"({"stream":[true]})", R"({"stream":{}})"}) {
        auto f = read_request_fields(body);
        EXPECT_EQ(f.shape, BodyShape::object) << body;
        EXPECT_FALSE(f.stream) << body;
    }
}

TEST(RequestFields, ADuplicateKeyCountsAsItsLastValueAsAParsedDocumentHasIt) {
    const std::string body = R"({"model":"a","stream":true,"model":"b","stream":false})";
    auto f = read_request_fields(body);
    auto doc = nlohmann::json::parse(body);
    EXPECT_EQ(f.model, doc["model"].get<std::string>());
    EXPECT_EQ(f.stream, doc["stream"].get<bool>());
    EXPECT_FALSE(read_request_fields(R"({"model":"a","model":7})").model);
}

TEST(RequestFields, NotJsonIsSaidSo) {
    for (const char* body : {"", "{", R"({"model":"m"} x)", R"({"model":"m"}{})", R"({"model":"m",})", "{'model':'m'}",
                             "{\"model\":\"\xff\"}", R"({"model":"m")", "nul", R"({"model":"m","temperature":1e999})"}) {
        auto f = read_request_fields(body);
        EXPECT_EQ(f.shape, BodyShape::not_json) << body;
        EXPECT_FALSE(f.model) << body;
    }
    EXPECT_EQ(read_request_fields(std::string("{\"model\":\"m\"}\0x", 15)).shape, BodyShape::not_json)
        << "what follows a NUL is not ignored";
    EXPECT_EQ(read_request_fields(std::string("{\"model\":\"m\0\"}", 14)).shape, BodyShape::not_json) << "a raw NUL in a string";
}

TEST(RequestFields, JsonThatIsNotAnObjectIsSaidSo) {
    for (const char* body : {"[]", R"(["model","m"])", "\"m\"", "1", "null", " true "}) {
        auto f = read_request_fields(body);
        EXPECT_EQ(f.shape, BodyShape::other_json) << body;
        EXPECT_FALSE(f.model) << body;
    }
}

TEST(RequestFields, AByteOrderMarkIsSkipped) {
    auto f = read_request_fields("\xEF\xBB\xBF{\"model\":\"m\"}");
    EXPECT_EQ(f.shape, BodyShape::object);
    EXPECT_EQ(f.model, "m");
}

TEST(RequestFields, NestingIsReadToItsLimitAndRefusedBeyond) {
    auto nested = [](std::size_t depth) { // the top-level object is one level
        return "{\"tools\":" + std::string(depth - 1, '[') + std::string(depth - 1, ']') + ",\"model\":\"m\"}";
    };
    auto f = read_request_fields(nested(k_max_body_depth));
    EXPECT_EQ(f.shape, BodyShape::object);
    EXPECT_EQ(f.model, "m");
    f = read_request_fields(nested(k_max_body_depth + 1));
    EXPECT_EQ(f.shape, BodyShape::too_deep);
    EXPECT_FALSE(f.model);
    EXPECT_EQ(read_request_fields(std::string(10'000'000, '[')).shape, BodyShape::too_deep) << "ten million '[' (the stack holds)";
}
