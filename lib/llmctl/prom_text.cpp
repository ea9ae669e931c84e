#include "llmctl/prom_text.hpp"

#include <cmath>
#include <fmt/format.h>

namespace llmctl {

const char* const k_prom_content_type = "text/plain; version=0.0.4; charset=utf-8";

namespace {

std::string escaped(const std::string& v, bool help) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '"' && !help)
            out += "\\\"";
        else
            out += c;
    }
    return out;
}

std::string number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (std::isnan(v)) return "NaN";
    if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<std::int64_t>(v));
    return fmt::format("{}", v);
}

} // namespace

void PromText::family(const std::string& name, const char* type, const std::string& help) {
    name_ = name;
    text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escaped(help, true), name, type);
}

void PromText::sample(const PromLabels& labels, double value, const char* suffix) {
    text_ += name_;
    text_ += suffix;
    if (!labels.empty()) {
        text_ += '{';
        for (std::size_t i = 0; i < labels.size(); ++i)
            text_ += fmt::format("{}{}=\"{}\"", i ? "," : "", labels[i].first, escaped(labels[i].second, false));
        text_ += '}';
    }
    text_ += ' ';
    text_ += number(value);
    text_ += '\n';
}

void PromText::histogram(const PromLabels& labels, const std::vector<double>& bounds, const std::vector<std::uint64_t>& counts,
                         double sum) {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i <= bounds.size(); ++i) {
        total += i < counts.size() ? counts[i] : 0;
        PromLabels l = labels;
        l.emplace_back("le", i < bounds.size() ? number(bounds[i]) : "+Inf");
        sample(l, static_cast<double>(total), "_bucket");
    }
    sample(labels, sum, "_sum");
    sample(labels, static_cast<double>(total), "_count");
}

} // namespace llmctl
