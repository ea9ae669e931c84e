#include "llmctl/config.hpp"
#include "llmctl/config_keys.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/http_client.hpp"

#include <gtest/gtest.h>

using namespace llmctl;

TEST(Config, FullValidConfig) {
    auto cfg = parse_config(R"(
[defaults]
host = "127.0.0.1"
port_range = [10500, 10999]
startup_timeout = "120s"
stop_timeout = "10s"
idle_timeout = "0"
log_max_size = "64MiB"
log_keep = 3

[models.phi4]
command = ["llama-server", "-m", "~/models/phi-4.gguf", "--host", "{host}", "--port", "{port}", "-np", "2"]
health = "/health"
max_concurrent = 2
model = "phi-4"
env = { CUDA_VISIBLE_DEVICES = "0" }
idle_timeout = "30m"
cwd = "/tmp"

[models.fixed]
command = ["srv"]
port = 8081
startup_timeout = "1h30m"

[models.gpu-box]
url = "http://10.0.0.5:8080/"
api_key_env = "GPU_BOX_KEY"
)",
                            "test.toml");
    ASSERT_EQ(cfg.models.size(), 3u);
    const auto& p = cfg.models.at("phi4");
    EXPECT_EQ(p.command.size(), 9u);
    EXPECT_EQ(p.model, "phi-4");
    EXPECT_EQ(p.max_concurrent, 2);
    EXPECT_EQ(p.env.at("CUDA_VISIBLE_DEVICES"), "0");
    EXPECT_EQ(p.idle_timeout, Millis(30 * 60'000));
    EXPECT_EQ(p.stop_timeout, Millis(10'000));
    EXPECT_EQ(p.log_max_size, 64ull << 20);
    EXPECT_EQ(p.port_min, 10500);
    EXPECT_FALSE(p.external());
    const auto& f = cfg.models.at("fixed");
    EXPECT_EQ(f.port, 8081);
    EXPECT_EQ(f.model, "fixed");
    EXPECT_EQ(f.startup_timeout, Millis(5'400'000));
    const auto& g = cfg.models.at("gpu-box");
    EXPECT_TRUE(g.external());
    EXPECT_EQ(g.url, "http://10.0.0.5:8080");
    EXPECT_EQ(g.api_key_env, "GPU_BOX_KEY");
}

TEST(Config, DefaultsInherited) {
    auto cfg = parse_config("[defaults]\nport_range = [2000, 2010]\nstop_timeout = \"3s\"\n[models.a]\ncommand = [\"x\"]\n", "t.toml");
    EXPECT_EQ(cfg.models.at("a").port_min, 2000);
    EXPECT_EQ(cfg.models.at("a").port_max, 2010);
    EXPECT_EQ(cfg.models.at("a").stop_timeout, Millis(3000));
}

TEST(Config, Placeholders) {
    setenv("HOME", "/home/u", 1);
    EXPECT_EQ(expand_placeholders("~/m/{name}.gguf", "h", 1, "phi"), "/home/u/m/phi.gguf");
    EXPECT_EQ(expand_placeholders("{host}:{port}", "127.0.0.1", 10500, "x"), "127.0.0.1:10500");
}

TEST(Config, ModelNames) {
    EXPECT_TRUE(valid_model_name("phi-4.q4_k"));
    EXPECT_TRUE(valid_model_name("7b"));
    EXPECT_FALSE(valid_model_name("-x"));
    EXPECT_FALSE(valid_model_name(".x"));
    EXPECT_FALSE(valid_model_name("a..b"));
    EXPECT_FALSE(valid_model_name("a/b"));
    EXPECT_FALSE(valid_model_name(""));
    EXPECT_FALSE(valid_model_name(std::string(65, 'a')));
}

struct BadConfig {
    const char* name;
    const char* text;
    int line;
    int col;
    const char* fragment;
};

void PrintTo(const BadConfig& b, std::ostream* os) { *os << b.name; }

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, NamesFileLineColumn) {
    const auto& b = GetParam();
    try {
        parse_config(b.text, "bad.toml");
        FAIL() << "no error for " << b.name;
    } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_EQ(e.code(), Exit::config);
        std::string where = "bad.toml:" + std::to_string(b.line) + ":" + std::to_string(b.col) + ":";
        EXPECT_EQ(msg.rfind(where, 0), 0u) << msg;
        EXPECT_NE(msg.find(b.fragment), std::string::npos) << msg;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Config, BadConfigTest,
    ::testing::Values(
        BadConfig{"syntax", "[models.a]\ncommand = [\"x\"\n", 2, 16, "TOML syntax error"},
        BadConfig{"duration_overflow", "[defaults]\nstartup_timeout = 36444444444444400\n", 2, 19, "seconds is too long"},
        BadConfig{"syntax_value", "[defaults]\nhost = \n", 2, 8, "TOML syntax error"},
        BadConfig{"unknown_top", "[model.a]\ncommand = [\"x\"]\n", 1, 2, "did you mean \"models\"?"},
        BadConfig{"unknown_model_key", "[models.a]\ncomand = [\"x\"]\n", 2, 1, "did you mean \"command\"?"},
        BadConfig{"unknown_default_key", "[defaults]\nstop_timout = \"1s\"\n", 2, 1, "did you mean \"stop_timeout\"?"},
        BadConfig{"command_type", "[models.a]\ncommand = \"llama-server -m x\"\n", 2, 11, "must be an array of strings"},
        BadConfig{"command_elem_type", "[models.a]\ncommand = [\"x\", 5]\n", 2, 17, "must be a string, not an integer"},
        BadConfig{"empty_command", "[models.a]\ncommand = []\n", 2, 11, "is empty"},
        BadConfig{"both", "[models.a]\ncommand = [\"x\"]\nurl = \"http://h:1\"\n", 3, 7, "both \"command\" and \"url\""},
        BadConfig{"neither", "[models.a]\nmodel = \"m\"\n", 1, 9, "neither \"command\" nor \"url\""},
        BadConfig{"port_high", "[models.a]\ncommand = [\"x\"]\nport = 70000\n", 3, 8, "out of range (1–65535)"},
        BadConfig{"port_zero", "[models.a]\ncommand = [\"x\"]\nport = 0\n", 3, 8, "out of range"},
        BadConfig{"range_inverted", "[defaults]\nport_range = [11000, 10000]\n", 2, 14, "inverted"},
        BadConfig{"range_short", "[defaults]\nport_range = [11000]\n", 2, 14, "array of two ports"},
        BadConfig{"bad_duration", "[defaults]\nstartup_timeout = \"2 minutes\"\n", 2, 19, "bad duration"},
        BadConfig{"negative_duration", "[defaults]\nstop_timeout = -1\n", 2, 16, "must not be negative"},
        BadConfig{"bad_size", "[defaults]\nlog_max_size = \"64 parsecs\"\n", 2, 16, "bad size"},
        BadConfig{"ambiguous_size", "[defaults]\nlog_max_size = \"10M\"\n", 2, 16, "powers of 1024 or of 1000"},
        BadConfig{"bad_name_dots", "[models.\"a..b\"]\ncommand = [\"x\"]\n", 1, 9, "bad model name"},
        BadConfig{"bad_name_dash", "[models.-x]\ncommand = [\"x\"]\n", 1, 9, "bad model name"},
        BadConfig{"bad_name_slash", "[models.\"a/b\"]\ncommand = [\"x\"]\n", 1, 9, "bad model name"},
        BadConfig{"model_not_table", "[models]\na = 5\n", 2, 5, "must be a table"},
        BadConfig{"env_type", "[models.a]\ncommand = [\"x\"]\nenv = { A = 1 }\n", 3, 13, "must be a string"},
        BadConfig{"max_concurrent_zero", "[models.a]\ncommand = [\"x\"]\nmax_concurrent = 0\n", 3, 18, "out of range"},
        BadConfig{"health_path", "[models.a]\ncommand = [\"x\"]\nhealth = \"health\"\n", 3, 10, "starting with \"/\""},
        BadConfig{"bad_url", "[models.a]\nurl = \"ftp://x\"\n", 2, 7, "must look like http://HOST[:PORT][/PATH]"},
        BadConfig{"ca_file_on_http", "[models.a]\nurl = \"http://h:1\"\nca_file = \"/ca.pem\"\n", 3, 11,
                  "\"ca_file\" of model \"a\" is for an https:// url"},
        BadConfig{"tls_verify_on_http", "[models.a]\nurl = \"http://h:1\"\ntls_verify = false\n", 3, 14, "is for an https:// url"},
        BadConfig{"header_authorization", "[models.a]\nurl = \"https://h\"\nheaders = { Authorization = \"x\" }\n", 3, 13,
                  "may not set Authorization"},
        BadConfig{"header_line_break", "[models.a]\nurl = \"https://h\"\nheaders = { X-A = \"1\\r\\nX-B: 2\" }\n", 3, 19,
                  "has a line break"},
        BadConfig{"header_name", "[models.a]\nurl = \"https://h\"\nheaders = { \"X A\" = \"1\" }\n", 3, 13, "is not an HTTP header name"},
        BadConfig{"client_key_alone", "[models.a]\nurl = \"https://h\"\nclient_key = \"/k.pem\"\n", 3, 14,
                  "has client_key but no client_cert"},
        BadConfig{"url_bad_port", "[models.a]\nurl = \"http://h:99999\"\n", 2, 7, "must look like http://HOST"},
        BadConfig{"pool_undefined", "[pools.gpu0]\n[models.a]\ncommand = [\"x\"]\nmemory = \"1GiB\"\npool = \"gpu\"\n", 5, 8,
                  "no pool \"gpu\" (did you mean \"gpu0\"?)"},
        BadConfig{"pool_undefined_in_defaults", "[defaults]\npool = \"p\"\n[models.a]\ncommand = [\"x\"]\nmemory = \"1GiB\"\n", 2, 8,
                  "model \"a\": no pool \"p\""},
        BadConfig{"memory_auto_no_gguf", "[pools.p]\n[models.a]\ncommand = [\"vllm\", \"serve\", \"x\"]\npool = \"p\"\n", 2, 9,
                  "memory = \"auto\" (the default), but the command names no GGUF file"},
        BadConfig{"memory_auto_hf",
                  "[pools.p]\n[models.a]\ncommand = [\"llama-server\", \"-hf\", \"x/y\"]\nmemory = \"auto\"\npool = \"p\"\n", 4, 10,
                  "llama-server fetch its model"},
        BadConfig{"memory_over_pool", "[pools.p]\nmemory = \"8GiB\"\n[models.a]\ncommand = [\"x\"]\nmemory = \"9GiB\"\npool = \"p\"\n", 5,
                  10, "more than the whole of pool \"p\" (8GiB)"},
        BadConfig{"memory_zero", "[models.a]\ncommand = [\"x\"]\nmemory = 0\n", 3, 10, "must be more than 0"},
        BadConfig{"memory_word", "[models.a]\ncommand = [\"x\"]\nmemory = \"lots\"\n", 3, 10, "bad size"},
        BadConfig{"pin_string", "[models.a]\ncommand = [\"x\"]\npin = \"yes\"\n", 3, 7, "must be true or false"},
        BadConfig{"pool_kind", "[pools.p]\nkind = \"vram\"\n", 2, 8, "neither \"ram\" nor \"gpu\""},
        BadConfig{"pool_gpu_on_ram", "[pools.p]\ngpu = 1\n", 2, 7, "not of kind = \"gpu\""},
        BadConfig{"pool_key", "[pools.p]\nmemroy = \"1GiB\"\n", 2, 1, "did you mean \"memory\"?"},
        BadConfig{"pool_name", "[pools.\"a b\"]\n", 1, 8, "bad pool name"},
        BadConfig{"restart_policy", "[models.x]\ncommand = [\"a\"]\nrestart = \"on_failure\"\n", 3, 11,
                  "is not a restart policy (did you mean \"on-failure\"?)"},
        BadConfig{"restart_max", "[defaults]\nrestart_max = 0\n", 2, 15, "out of range"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Config, HttpsUrlWithItsFilesResolvedAsCwdIs) {
    auto cfg = parse_config("[models.p]\nurl = \"https://api.example.com/\"\nca_file = \"certs/ca.pem\"\n"
                            "client_cert = \"/etc/c.pem\"\ntls_verify = false\n",
                            "/nonexistent-cfg/t.toml");
    const ModelConfig& m = cfg.models.at("p");
    EXPECT_EQ(m.ca_file, "/nonexistent-cfg/certs/ca.pem") << "relative to the config file, as cwd is";
    Url u = external_url(m);
    EXPECT_TRUE(u.https);
    EXPECT_EQ(u.host, "api.example.com");
    EXPECT_EQ(u.port, 443);
    EXPECT_EQ(u.tls, (TlsSettings{"/nonexistent-cfg/certs/ca.pem", "/etc/c.pem", "", false}));
    EXPECT_NE(unverified_tls_warning(m).find("tls_verify = false"), std::string::npos);

    Url v6 = parse_url("https://[::1]:8443/api/");
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(v6.port, 8443);
    EXPECT_EQ(v6.base, "/api");
    EXPECT_EQ(parse_url("http://h").port, 80);
    EXPECT_FALSE(parse_url("http://h").https);
    // An http url's connection key is its host; an https one's carries its TLS settings.
    EXPECT_EQ(connection_key(parse_url("http://h:1")), "h");
    EXPECT_NE(connection_key(u), connection_key(parse_url("https://api.example.com")));
}

TEST(Config, PoolsAndMemory) {
    auto cfg = parse_config(R"([defaults]
pool = "gpu"
[pools.gpu]
memory = "24GiB"
kind = "gpu"
gpu = 1
[pools.ram]
[models.big]
command = ["llama-server", "-m", "/m/big.gguf"]
pin = true
[models.small]
command = ["x"]
memory = "2GiB"
pool = "ram"
[models.free]
command = ["x"]
pool = ""
[models.outside]
url = "http://127.0.0.1:9"
)",
                            "t.toml");
    const auto& big = cfg.models.at("big");
    EXPECT_EQ(big.pool, "gpu");
    EXPECT_TRUE(big.memory_auto); // the default in a pool
    EXPECT_TRUE(big.pin);
    EXPECT_EQ(big.memory_at, "t.toml:8:9"); // [models.big]: no memory key
    ASSERT_NE(cfg.pool_of(big), nullptr);
    EXPECT_EQ(cfg.pool_of(big)->memory, 24ull << 30);
    EXPECT_EQ(cfg.pool_of(big)->kind, "gpu");
    EXPECT_EQ(cfg.pool_of(big)->gpu, 1);
    EXPECT_EQ(cfg.models.at("small").memory, 2ull << 30);
    EXPECT_EQ(cfg.pool_of(cfg.models.at("small"))->memory, std::nullopt); // "auto"
    EXPECT_EQ(cfg.pool_of(cfg.models.at("small"))->kind, "ram");
    EXPECT_EQ(cfg.pool_of(cfg.models.at("free")), nullptr);
    EXPECT_EQ(cfg.pool_of(cfg.models.at("outside")), nullptr);
    EXPECT_EQ(model_json(big)["memory"], "auto");
    EXPECT_EQ(model_json(cfg.models.at("small"))["memory"], "2GiB");
    EXPECT_EQ(pool_json(cfg.pools.at("gpu"))["memory"], "24GiB");
}

TEST(Config, MissingFileIsConfigError) {
    try {
        load_config_file("/nonexistent/llmctl.toml");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::config);
        EXPECT_NE(std::string(e.what()).find("/nonexistent/llmctl.toml"), std::string::npos);
    }
}

TEST(Config, BuiltinHasEcho) {
    auto cfg = builtin_config();
    ASSERT_NE(cfg.find("echo"), nullptr);
    EXPECT_NE(cfg.find("echo")->command[0].find("llmctl-mock-server"), std::string::npos);
}
