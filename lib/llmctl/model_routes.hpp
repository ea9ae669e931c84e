#pragma once
// Which configured model a request's "model" names (`llmctl serve`): its config name, its `model`
// value (the name its server knows it by) or one of its `aliases`; and the list GET /v1/models
// answers.

#include "llmctl/config.hpp"

#include <nlohmann/json.hpp>
#include <string>

namespace llmctl {

// The model `requested` names, or nullptr. A config name wins over another model's `model`
// value or alias.
const ModelConfig* route_model(const Config& cfg, const std::string& requested);

// Why `requested` names no model: a did-you-mean and the names a client may use.
std::string unknown_model_message(const Config& cfg, const std::string& requested);

// The name the model's server is asked for: its `model` value, else its config name.
std::string upstream_model_name(const ModelConfig& m);

// GET /v1/models: every configured model in OpenAI's list form, with llmctl's view of it
// ("llmctl": {"status", "kind", "aliases"}) read from the state dir.
nlohmann::json models_list(const Config& cfg, const std::string& state_dir);

} // namespace llmctl
