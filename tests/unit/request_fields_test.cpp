#include "llmctl/request_fields.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace llmctl;

TEST(RequestFields, ReadsTheTopLevelModelAndStream) {
    auto f = read_request_fields(R"({"model":"m1","stream":true,"messages":[{"role":"user","content":"hi"}]})");
    ASSERT_TRUE(f);
    EXPECT_TRUE(f->object);
    EXPECT_EQ(f->model, "m1");
    EXPECT_TRUE(f->stream);
    f = read_request_fields(R"({"messages":[],"model":"m\u00e9","stream":false})");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->model, "m\xc3\xa9") << "an escaped name is read as its text";
    EXPECT_FALSE(f->stream);
}

TEST(RequestFields, NestedFieldsAreNotTheRequests) {
    auto f = read_request_fields(R"({"messages":[{"model":"inner","stream":true}],"options":{"model":"x"},"model":"outer"})");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->model, "outer");
    EXPECT_FALSE(f->stream);
    f = read_request_fields(R"({"a":{"model":"inner"}})");
    ASSERT_TRUE(f);
    EXPECT_FALSE(f->model);
}

TEST(RequestFields, AModelOrStreamOfAnotherTypeIsNone) {
    for (const char* body :
         {R"({"model":1})", R"({"model":null})", R"({"model":["m"]})", R"({"model":{"name":"m"}})", R"({"model":true})"}) {
        auto f = read_request_fields(body);
        ASSERT_TRUE(f) << body;
        EXPECT_FALSE(f->model) << body;
    }
    for (const char* body : {R"({"stream":"true"})", R"({"stream":1})", R"({"stream":[true]})", R"({"stream":{}})"}) {
        auto f = read_request_fields(body);
        ASSERT_TRUE(f) << body;
        EXPECT_FALSE(f->stream) << body;
    }
}

TEST(RequestFields, ADuplicateKeyCountsAsItsLastValueAsAParsedDocumentHasIt) {
    const std::string body = R"({"model":"a","stream":true,"model":"b","stream":false})";
    auto f = read_request_fields(body);
    ASSERT_TRUE(f);
    auto doc = nlohmann::json::parse(body);
    EXPECT_EQ(f->model, doc["model"].get<std::string>());
    EXPECT_EQ(f->stream, doc["stream"].get<bool>());
    f = read_request_fields(R"({"model":"a","model":7})");
    ASSERT_TRUE(f);
    EXPECT_FALSE(f->model);
}

TEST(RequestFields, NotJsonIsNone) {
    for (const char* body : {"", "{", R"({"model":"m"} x)", R"({"model":"m"}{})", R"({"model":"m",})", "{'model':'m'}",
                             "{\"model\":\"\xff\"}", R"({"model":"m")", "nul"})
        EXPECT_FALSE(read_request_fields(body)) << body;
}

TEST(RequestFields, JsonThatIsNotAnObjectIsSaidSo) {
    for (const char* body : {"[]", R"(["model","m"])", "\"m\"", "1", "null", " true "}) {
        auto f = read_request_fields(body);
        ASSERT_TRUE(f) << body;
        EXPECT_FALSE(f->object) << body;
        EXPECT_FALSE(f->model) << body;
    }
}
