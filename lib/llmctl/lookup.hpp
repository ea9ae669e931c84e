#pragma once
// What a name stands for: a model of the config, or a running ad-hoc server (`start NAME -- CMD`)
// whose settings were recorded with its row, so it can be used, restarted and probed by name.

#include "llmctl/config.hpp"

#include <optional>
#include <string>

namespace llmctl {

// The JSON recorded with a server (servers.spec): its command (placeholders unexpanded), health
// check, cwd and env, and whether it is ad-hoc.
std::string model_spec_json(const ModelConfig& m);

// The model of an ad-hoc server from its recorded spec, every other setting from `d`; nullopt when
// the spec is missing or not one llmctl writes.
std::optional<ModelConfig> model_from_spec(const Defaults& d, const std::string& name, const std::string& spec_json);

// The model of `start NAME -- CMD`: [defaults] with this command, run in `cwd` (recorded, so a
// restart from elsewhere runs it in the same place), ready by `health` ("": the default). Throws
// Error(usage) when NAME is a configured model, when a live server of that name runs another
// command, or for a health that is neither an HTTP path nor "tcp".
ModelConfig adhoc_model(const Config& cfg, const std::string& state_dir, const std::string& name, const std::vector<std::string>& command,
                        const std::string& health, const std::string& cwd);

// The model `name` stands for: its config entry, else the recorded spec of a server of that name
// in `state_dir` that is not in the config (an ad-hoc one). nullopt: neither.
std::optional<ModelConfig> find_model(const Config& cfg, const std::string& state_dir, const std::string& name);

} // namespace llmctl
