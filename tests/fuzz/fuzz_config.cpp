// libFuzzer target: TOML text → a config, or a clean llmctl::Error (exit 3, file:line:column).
// Any other exception, a crash or a config that breaks the loader's promises is a finding.
#include "llmctl/config.hpp"
#include "llmctl/errors.hpp"

#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    try {
        llmctl::Config cfg = llmctl::parse_config(text, "fuzz.toml");
        for (const auto& [name, m] : cfg.models) {
            if (!llmctl::valid_model_name(name) || m.name != name) std::abort();
            if (m.external() == !m.command.empty()) std::abort(); // exactly one of command and url
            if (!m.external() && (m.port_min > m.port_max || m.port_min < 1 || m.port_max > 65535)) std::abort();
            if (m.max_concurrent < 1) std::abort();
            (void)llmctl::config_hash(m);
            for (const auto& a : m.command) (void)llmctl::expand_placeholders(a, m.host, 12345, m.name);
        }
    } catch (const llmctl::Error& e) {
        if (e.code() != llmctl::Exit::config) std::abort();
        if (std::string(e.what()).rfind("fuzz.toml:", 0) != 0) std::abort(); // always names the place
    }
    return 0;
}
