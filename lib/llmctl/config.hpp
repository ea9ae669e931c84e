#pragma once
// The configuration: [defaults] and [models.NAME] from TOML, or the built-in default.

#include "llmctl/address.hpp"
#include "llmctl/names.hpp"
#include "llmctl/units.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace llmctl {

// What a model inherits from [defaults] unless it sets it itself (llmctl.toml(5), SHARED KEYS),
// with the built-in defaults.
struct Settings {
    std::string host = "127.0.0.1";
    int port_min = 10500;
    int port_max = 10999;
    std::string health = "/health";
    int max_concurrent = 1;
    Millis startup_timeout{120'000};
    Millis stop_timeout{10'000};
    Millis drain_timeout{30'000}; // stop/restart/idle reap wait this long for chats in flight
    Millis idle_timeout{0};       // 0 = never stopped for idleness
    // chat, per phase (0 = no limit where noted)
    Millis connect_timeout{5'000};
    Millis first_token_timeout{300'000};
    Millis stall_timeout{60'000};
    Millis request_timeout{0}; // the whole answer; 0 = none
    Millis queue_timeout{0};   // waiting for a slot; 0 = none
    std::uint64_t log_max_size = 64ull << 20;
    int log_keep = 3;
    std::string pool;    // the memory pool its servers count against ([pools.NAME]); "" = none
    std::string pool_at; // "FILE:LINE:COL" of the pool key, for messages
    // Supervision (llmctl.toml(5), SUPERVISION): what the monitor's record of an exit does next.
    std::string restart = "no"; // "no" | "on-failure" | "always"
    int restart_max = 5;
    Millis restart_window{600'000};
    Millis restart_delay{1'000};
    // Probes (llmctl.toml(5), SUPERVISION): run beside the server by its monitor.
    std::string probe;            // "" none | "health" | "completion"
    Millis probe_every{30'000};   // between two probes
    Millis probe_timeout{10'000}; // a probe's answer (and its wait for a slot)
};

// [defaults]: the shared settings and those that only make sense for all models at once.
struct Defaults : Settings {
    int max_inflight = 0; // 0 = no global cap
};

// One [models.NAME] entry with every inherited value already filled in.
struct ModelConfig : Settings {
    std::string name;
    std::vector<std::string> command; // managed: argv, placeholders unexpanded
    std::string url;                  // external: base URL, not managed
    std::optional<int> port;          // fixed port, else allocated from the range
    std::map<std::string, std::string> env;
    std::string cwd;                  // absolute ("~" and a relative path resolved when parsed)
    std::string cwd_at;               // "FILE:LINE:COL" of the cwd key, for messages
    std::string origin;               // Config::origin of the config it came from ("" unknown)
    std::string model;                // the "model" field sent to the API
    std::vector<std::string> aliases; // more names `llmctl serve` routes to this model
    std::string api_key_env;
    // An https:// url's TLS (llmctl.toml(5), HTTPS): files resolved as cwd is; tls_verify = false
    // only when written, with a warning at each use.
    std::string ca_file, client_cert, client_key;
    bool tls_verify = true;
    std::map<std::string, std::string> headers; // an external model's extra request headers
    // Its memory (llmctl.toml(5), MEMORY): declared, or `memory_auto` (estimated from the GGUF
    // file of its command; the default of a model in a pool). Counted only in a pool.
    std::optional<std::uint64_t> memory;
    bool memory_auto = false;
    std::string memory_at; // "FILE:LINE:COL" of the memory key, else of [models.NAME]
    bool pin = false;      // never evicted to make room for another model
    bool preload = false;  // kept running: started by reap, serve and apply when it is not
    std::string at;        // "FILE:LINE:COL" of [models.NAME]

    bool adhoc = false; // from `start NAME -- CMD`, not the config

    bool external() const { return !url.empty(); }
};

// [serve]: `llmctl serve`'s settings (its flags override them; llmctl.toml(5), SERVE KEYS).
struct ServeSettings {
    std::string listen = "127.0.0.1:8080";  // HOST:PORT, [V6]:PORT, :PORT or PORT
    std::string api_key_env;                // clients must send this variable's value; "" = none
    std::vector<std::string> cors_origins;  // browser origins allowed ("*": any)
    std::vector<std::string> allowed_hosts; // more Host header names than the listen address
    std::uint64_t max_body = 32ull << 20;   // larger request bodies: 413
    Millis header_timeout{10'000};          // a request's headers must arrive within this
    Millis drain_timeout{30'000};           // on SIGTERM/SIGINT: time for requests in flight
    int max_queue = 64;                     // waiting requests per model beyond which: 429
    Millis reap_every{30'000};              // serve runs reap this often; 0 = never
};

// [pools.NAME]: memory that the servers of the models in it share (llmctl.toml(5), POOL KEYS).
struct PoolConfig {
    std::string name;
    std::optional<std::uint64_t> memory; // the budget; nullopt: "auto" (the GPU's total, else MemTotal)
    std::string kind = "ram";            // "ram" (RSS counts) or "gpu" (nvidia-smi's memory counts)
    int gpu = 0;                         // kind "gpu": the GPU's index in nvidia-smi
    std::string at;                      // "FILE:LINE:COL" of [pools.NAME]
};

struct Config {
    std::string source; // the file it came from, or "<built-in>"
    std::string origin; // the same as one canonical absolute path (what rows record), or "<built-in>"
    Defaults defaults;
    ServeSettings serve;
    std::map<std::string, PoolConfig> pools;
    std::map<std::string, ModelConfig> models;

    // The pool of a model (nullptr: it has none, or it is not managed).
    const PoolConfig* pool_of(const ModelConfig& m) const;

    // The model, or nullptr.
    const ModelConfig* find(const std::string& name) const;
    std::vector<std::string> model_names() const;
};

// A model named `name` with every inheritable setting taken from `d` (no command, no url).
ModelConfig model_from_defaults(const Defaults& d, const std::string& name);

// Parses TOML text; `source` names the file in error messages. Throws Error(config).
// (config_keys.cpp, where every key is declared.)
Config parse_config(const std::string& text, const std::string& source);

// Reads and parses a file. Throws Error(config) naming the file.
Config load_config_file(const std::string& path);

// The built-in configuration: the `echo` model running the bundled mock server.
Config builtin_config();

// The config path in force: `cli` > $LLMCTL_CONFIG > $XDG_CONFIG_HOME/llmctl/config.toml
// (only if it exists) > "" meaning built-in.
std::string resolve_config_path(const std::string& cli);

// Loads the config in force (see resolve_config_path).
Config load_config(const std::string& cli_path);

// For commands that clean up (stop, reap, logs): a config being edited must not block them, since
// what they need is in the state file. The config in force, or, when it cannot be read or parsed,
// one with the built-in [defaults] and no models, plus the error in `problem` (empty when none).
struct CleanupConfig {
    Config config;
    std::string problem; // "FILE:LINE:COL: what" of the config error, "" when the config is fine
    bool ok() const { return problem.empty(); }
};
CleanupConfig load_config_for_cleanup(const std::string& cli_path);

// What `config check` finds beyond the syntax: a model's cwd that does not exist or is not a
// directory, an https model's ca_file, client_cert or client_key it cannot read (one
// "FILE:LINE:COL: …" line each). Using such a model fails too.
std::vector<std::string> check_paths(const Config& cfg);

// True for a readiness check llmctl understands: an HTTP path ("/health") or "tcp".
bool valid_health(const std::string& health);

// Expands {host} {port} {name} placeholders and a leading "~/" in one string.
std::string expand_placeholders(const std::string& s, const std::string& host, int port, const std::string& name);

// The API key of an external model: the value of its api_key_env ("" when it has none).
// Throws Error(config) when the variable is not set.
std::string external_api_key(const ModelConfig& m);

// An external model's url, with its TLS settings when it is https://.
Url external_url(const ModelConfig& m);
// The warning each use of a model with tls_verify = false gives on stderr ("" for any other).
std::string unverified_tls_warning(const ModelConfig& m);

// A stable hash of what makes a running server match its config (argv, env, cwd, health, host
// and fixed port): `apply` restarts a server whose row records another.
std::string config_hash(const ModelConfig& m);
// The same without host and port (what its memory depends on): the key of measured footprints,
// the config_hash of rows before host and port were in it.
std::string footprint_hash(const ModelConfig& m);

} // namespace llmctl
