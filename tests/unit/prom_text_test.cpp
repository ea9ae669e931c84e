#include "llmctl/prom_text.hpp"

#include <gtest/gtest.h>

using namespace llmctl;

TEST(PromText, FamiliesAndEscapedLabels) {
    PromText p;
    p.family("x_total", "counter", "Things\\counted\nhere");
    p.sample({{"model", "a\"b\\c\nd"}}, 3);
    p.sample({}, 1.5);
    EXPECT_EQ(p.text(), "# HELP x_total Things\\\\counted\\nhere\n# TYPE x_total counter\n"
                        "x_total{model=\"a\\\"b\\\\c\\nd\"} 3\nx_total 1.5\n");
}

TEST(PromText, HistogramBucketsAreCumulative) {
    PromText p;
    p.family("h_seconds", "histogram", "h");
    p.histogram({{"m", "a"}}, {0.1, 1}, {2, 0, 1}, 3.25);
    EXPECT_EQ(p.text(), "# HELP h_seconds h\n# TYPE h_seconds histogram\n"
                        "h_seconds_bucket{m=\"a\",le=\"0.1\"} 2\nh_seconds_bucket{m=\"a\",le=\"1\"} 2\n"
                        "h_seconds_bucket{m=\"a\",le=\"+Inf\"} 3\nh_seconds_sum{m=\"a\"} 3.25\nh_seconds_count{m=\"a\"} 3\n");
}
