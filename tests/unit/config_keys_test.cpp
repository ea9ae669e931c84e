// The key table against llmctl.toml(5) and against the parser: every key is documented in its
// section with its type and its built-in default, and is read where its scope says.
#include "llmctl/config_keys.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/files.hpp"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <sstream>
#include <set>

using namespace llmctl;

namespace {

struct ManEntry {
    std::string section;  // "MODEL KEYS", "SHARED KEYS", "DEFAULTS-ONLY KEYS"
    std::string type;     // the value's form, markup removed: "duration", "[low, high]"
    std::string fallback; // what "(default _X_" says, "" when it says nothing
};

// "*key* = TYPE (default _X_...)" as a ManEntry (section left empty), or nullopt for another line.
// (Plain string search: std::regex trips GCC 12's -Wmaybe-uninitialized under ASan.)
std::optional<std::pair<std::string, ManEntry>> parse_entry(const std::string& line) {
    auto eq = line.find("* = ");
    if (line.empty() || line[0] != '*' || eq == std::string::npos) return std::nullopt;
    std::string name = line.substr(1, eq - 1);
    if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos) return std::nullopt;
    std::string rest = line.substr(eq + 4);
    ManEntry e;
    auto def = rest.find(" (default _");
    e.type = rest.substr(0, def);
    std::erase(e.type, '_');
    if (def != std::string::npos) {
        std::string value = rest.substr(def + 11);
        for (std::size_t i = 0; i + 1 < value.size(); ++i)
            if (value[i] == '_' && std::string_view(",;)").find(value[i + 1]) != std::string_view::npos) {
                e.fallback = value.substr(0, i);
                break;
            }
    }
    return std::pair{name, e};
}

// The "*key* = ..." lines of llmctl.toml(5), by "SECTION/key" (a name may be in two sections:
// a model's api_key_env and [serve]'s), with the section each is in.
std::map<std::string, ManEntry> man_entries() {
    auto text = read_file(std::string(LLMCTL_SOURCE_DIR) + "/man/llmctl.toml.5.scd");
    EXPECT_TRUE(text) << "cannot read man/llmctl.toml.5.scd";
    std::map<std::string, ManEntry> out;
    std::string section;
    std::istringstream in(text.value_or(""));
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("# ", 0) == 0) section = line.substr(2);
        if (auto entry = parse_entry(line)) {
            entry->second.section = section;
            out[section + "/" + entry->first] = entry->second;
        }
    }
    return out;
}

std::string section_of(KeyScope s) {
    switch (s) {
    case KeyScope::model: return "MODEL KEYS";
    case KeyScope::shared: return "SHARED KEYS";
    case KeyScope::defaults: return "DEFAULTS-ONLY KEYS";
    case KeyScope::serve: return "SERVE KEYS";
    case KeyScope::pool: return "POOL KEYS";
    }
    return "";
}

bool parses(const std::string& toml) {
    try {
        parse_config(toml, "t.toml");
        return true;
    } catch (const Error&) {
        return false;
    }
}

} // namespace

TEST(ConfigKeys, EveryKeyIsDocumentedInItsSectionWithItsType) {
    auto man = man_entries();
    ASSERT_GE(man.size(), 20u);
    for (const auto& k : config_keys()) {
        std::string name = section_of(k.scope) + "/" + std::string(k.name);
        ASSERT_TRUE(man.count(name)) << "llmctl.toml(5) does not document " << name;
        EXPECT_EQ(man[name].type, k.type) << name;
        EXPECT_FALSE(k.doc.empty()) << name;
    }
}

TEST(ConfigKeys, EveryDocumentedKeyIsAKey) {
    std::set<std::string> names;
    for (const auto& k : config_keys())
        EXPECT_TRUE(names.insert(section_of(k.scope) + "/" + std::string(k.name)).second) << "declared twice: " << k.name;
    for (const auto& [name, e] : man_entries())
        EXPECT_TRUE(names.count(name)) << "llmctl.toml(5) documents " << name << ", which llmctl refuses";
}

// The default llmctl.toml(5) states, written into [defaults], gives the built-in value.
TEST(ConfigKeys, DocumentedDefaultsAreTheBuiltInOnes) {
    auto man = man_entries();
    const nlohmann::json builtin = defaults_json(Defaults{});
    const nlohmann::json serve_builtin = serve_json(ServeSettings{});
    for (const auto& k : config_keys()) {
        if (k.scope == KeyScope::model) continue;
        std::string name(k.name);
        const ManEntry& e = man[section_of(k.scope) + "/" + name];
        ASSERT_FALSE(e.fallback.empty()) << "llmctl.toml(5) gives no default for " << name;
        if (k.scope == KeyScope::pool) {
            // (gpu applies to kind = "gpu" only)
            std::string kind = name == "gpu" ? "kind = \"gpu\"\n" : "";
            auto cfg = parse_config("[pools.p]\n" + kind + name + " = " + e.fallback + "\n", "t.toml");
            EXPECT_EQ(pool_json(cfg.pools.at("p"))[name], pool_json(PoolConfig{})[name]) << name << ": documented " << e.fallback;
            continue;
        }
        bool serve = k.scope == KeyScope::serve;
        auto cfg = parse_config((serve ? "[serve]\n" : "[defaults]\n") + name + " = " + e.fallback + "\n", "t.toml");
        if (serve)
            EXPECT_EQ(serve_json(cfg.serve)[name], serve_builtin[name]) << name << ": documented " << e.fallback;
        else
            EXPECT_EQ(defaults_json(cfg.defaults)[name], builtin[name]) << name << ": documented " << e.fallback;
    }
}

TEST(ConfigKeys, EachKeyIsReadWhereItsScopeSays) {
    for (const auto& k : config_keys()) {
        std::string name(k.name);
        std::string value = name == "command" ? R"(["x"])" : name == "url" ? R"("http://127.0.0.1:9")" : "";
        if (value.empty()) continue; // a table of its own kind: the two keys that make a model
        EXPECT_TRUE(parses("[models.m]\n" + name + " = " + value + "\n")) << name;
        EXPECT_FALSE(parses("[defaults]\n" + name + " = " + value + "\n")) << name;
    }
    EXPECT_TRUE(parses("[defaults]\nmax_inflight = 2\n"));
    EXPECT_FALSE(parses("[models.m]\ncommand = [\"x\"]\nmax_inflight = 2\n"));
    EXPECT_TRUE(parses("[defaults]\nstall_timeout = \"5s\"\n[models.m]\ncommand = [\"x\"]\nstall_timeout = \"6s\"\n"));
}

TEST(ConfigKeys, ShowHasEveryKeyThatApplies) {
    auto cfg = parse_config("[models.managed]\ncommand = [\"x\"]\n[models.outside]\nurl = \"http://127.0.0.1:9\"\n", "t.toml");
    auto d = defaults_json(cfg.defaults);
    auto managed = model_json(cfg.models.at("managed"));
    auto outside = model_json(cfg.models.at("outside"));
    EXPECT_EQ(managed["kind"], "managed");
    EXPECT_EQ(outside["kind"], "external");
    for (const auto& k : config_keys()) {
        std::string name(k.name);
        if (k.scope == KeyScope::serve) {
            EXPECT_TRUE(serve_json(cfg.serve).contains(name)) << name;
            continue;
        }
        if (k.scope == KeyScope::pool) {
            EXPECT_TRUE(pool_json(PoolConfig{}).contains(name)) << name;
            continue;
        }
        EXPECT_EQ(d.contains(name), k.scope != KeyScope::model) << name;
        EXPECT_EQ(managed.contains(name), k.scope != KeyScope::defaults && k.use != KeyUse::external) << name;
        EXPECT_EQ(outside.contains(name), k.scope != KeyScope::defaults && k.use != KeyUse::managed) << name;
    }
    EXPECT_TRUE(managed["port"].is_null());
    EXPECT_TRUE(managed["cwd"].is_null());
    EXPECT_TRUE(outside["api_key_env"].is_null());
    EXPECT_EQ(managed["first_token_timeout"], "5m");
}

TEST(ConfigKeys, ServeKeysAreReadOnlyInServe) {
    auto cfg =
        parse_config("[serve]\nlisten = \"[::1]:9000\"\nmax_queue = 5\nreap_every = \"2s\"\ncors_origins = [\"http://a:1\"]\n", "t.toml");
    EXPECT_EQ(cfg.serve.listen, "[::1]:9000");
    EXPECT_EQ(cfg.serve.max_queue, 5);
    EXPECT_EQ(cfg.serve.reap_every, Millis(2000));
    EXPECT_EQ(cfg.serve.cors_origins, std::vector<std::string>{"http://a:1"});
    EXPECT_FALSE(parses("[defaults]\nlisten = \":8080\"\n"));
    EXPECT_FALSE(parses("[serve]\nmax_concurrent = 2\n"));
    EXPECT_FALSE(parses("[serve]\nlisten = \"8080:x\"\n"));
    EXPECT_FALSE(parses("[serve]\ncors_origins = [\"localhost:3000\"]\n"));
    EXPECT_FALSE(parses("serve = 3\n"));
    try {
        parse_config("[serve]\nlistn = \":1\"\n", "t.toml");
        FAIL() << "a typo in [serve] was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("did you mean \"listen\""), std::string::npos) << e.what();
    }
}
