#include "llmctl/upstream_route.hpp"

#include <gtest/gtest.h>

using namespace llmctl;

TEST(UpstreamRoute, SplitsNameFromPathAndKeepsTheQuery) {
    EXPECT_TRUE(is_upstream_target("/upstream/m1/slots"));
    EXPECT_FALSE(is_upstream_target("/upstream"));
    EXPECT_FALSE(is_upstream_target("/v1/upstream/m1/slots"));
    auto r = parse_upstream_target("/upstream/m1/slots?fail_on_no_slot=1&x=%2e%2e");
    EXPECT_EQ(r.problem, UpstreamProblem::none);
    EXPECT_EQ(r.name, "m1");
    EXPECT_EQ(r.path, "/slots?fail_on_no_slot=1&x=%2e%2e"); // the query is not a path
    r = parse_upstream_target("/upstream/m1/v1/chat/completions");
    EXPECT_EQ(r.path, "/v1/chat/completions");
    EXPECT_EQ(parse_upstream_target("/upstream/m1/").path, "/");
    EXPECT_EQ(parse_upstream_target("/upstream/m1/a.b/..c/c..").path, "/a.b/..c/c..");
}

TEST(UpstreamRoute, NothingAfterTheNameIsNoPath) {
    for (const char* t : {"/upstream/m1", "/upstream/m1?x=1", "/upstream/", "/upstream/?x"})
        EXPECT_EQ(parse_upstream_target(t).problem, UpstreamProblem::no_path) << t;
    EXPECT_EQ(parse_upstream_target("/upstream/m1?x=1").name, "m1");
}

TEST(UpstreamRoute, RefusesPathsThatCouldLeaveTheBase) {
    for (const char* t :
         {"/upstream/m1/../m2/slots", "/upstream/m1/..", "/upstream/m1/./slots", "/upstream/m1/%2e%2e/m2", "/upstream/m1/%2E./x",
          "/upstream/m1/.%2e", "/upstream/m1/..%2fm2/slots", "/upstream/m1/x%2F..%2F..%2Fy", "/upstream/m1/..%5cm2", "/upstream/m1/..\\m2",
          "/upstream/m1/..;/m2", "/upstream/m1//evil.example/x", "/upstream/m1/%zz", "/upstream/m1/%2", "/upstream/m1/%252e%252e/x"}) {
        auto r = parse_upstream_target(t);
        EXPECT_EQ(r.problem, UpstreamProblem::unsafe_path) << t;
        EXPECT_EQ(r.path, "") << t;
    }
}

TEST(UpstreamRoute, PathStaysUnderBase) {
    EXPECT_TRUE(path_stays_under_base("/tokenize"));
    EXPECT_TRUE(path_stays_under_base("/a/b/?q=/../.."));
    EXPECT_FALSE(path_stays_under_base("tokenize"));
    EXPECT_FALSE(path_stays_under_base(""));
    EXPECT_FALSE(path_stays_under_base("/a/.."));
}
