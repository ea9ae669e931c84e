#pragma once
// The config keys, each declared once (config_keys.cpp): the one table drives parsing, the
// did-you-mean for an unknown key, `config show` and the check that llmctl.toml(5) documents
// every key with its type and default.

#include "llmctl/config.hpp"

#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

namespace llmctl {

// Where a key may be written: the sections of llmctl.toml(5).
enum class KeyScope {
    model,    // MODEL KEYS: only in [models.NAME]
    shared,   // SHARED KEYS: in [defaults] and in [models.NAME], where it overrides the default
    defaults, // DEFAULTS-ONLY KEYS: only in [defaults]
    serve,    // SERVE KEYS: only in [serve]
    pool,     // POOL KEYS: only in [pools.NAME]
};

// Which models a key means something for.
enum class KeyUse {
    managed,  // a server llmctl runs (command)
    external, // a server llmctl only talks to (url)
    both,
};

struct ConfigKey {
    std::string_view name;
    KeyScope scope;
    KeyUse use;
    std::string_view type; // as llmctl.toml(5) writes the value: "duration", "[string, ...]", ...
    std::string_view doc;  // one line
};

// Every key, in the order of llmctl.toml(5).
std::vector<ConfigKey> config_keys();

// [defaults] resolved, as `config show --json` prints it: every shared and defaults-only key.
nlohmann::json defaults_json(const Defaults& d);

// [serve] resolved, as `config show --json` prints it.
nlohmann::json serve_json(const ServeSettings& s);

// A pool resolved, as `config show --json` prints it.
nlohmann::json pool_json(const PoolConfig& p);

// A model resolved, as `config show --json` prints it: its name, its kind ("managed" or
// "external") and every key that applies to that kind; unset optional keys are null.
nlohmann::json model_json(const ModelConfig& m);

} // namespace llmctl
