#pragma once
// Prometheus's text exposition format (version 0.0.4), written: a family's # HELP and # TYPE
// lines once, then its samples; label values escaped; each family's samples together.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace llmctl {

using PromLabels = std::vector<std::pair<std::string, std::string>>;

class PromText {
public:
    // Starts a family: type is counter, gauge or histogram.
    void family(const std::string& name, const char* type, const std::string& help);
    // One sample of the current family (`suffix`: "_bucket", "_sum", "_count" for a histogram).
    void sample(const PromLabels& labels, double value, const char* suffix = "");
    // A histogram's samples: cumulative counts per upper bound (the last is +Inf), sum and count.
    void histogram(const PromLabels& labels, const std::vector<double>& bounds, const std::vector<std::uint64_t>& counts, double sum);

    const std::string& text() const { return text_; }
    std::string take() { return std::move(text_); }

private:
    std::string text_, name_;
};

// The Content-Type of the format.
extern const char* const k_prom_content_type;

} // namespace llmctl
