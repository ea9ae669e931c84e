#include "llmctl/tls_tunnel.hpp"

#include "llmctl/close_fds.hpp"
#include "llmctl/errors.hpp"
#include "llmctl/paths.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/process/v2/default_launcher.hpp>
#include <boost/process/v2/process.hpp>
#include <csignal>
#include <fcntl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

namespace llmctl {

namespace {

namespace bp = boost::process::v2;

// In the child, before exec: the socket becomes stdin, stdout and stderr go to /dev/null (a pipe
// a caller reads to its end must not wait for the helper), and the helper leaves us: a middle
// child exits at once (so it is nobody's to wait for) and it gets a session of its own (a
// terminal's Ctrl-C is for llmctl, which then closes its end).
struct TunnelChild {
    int socket;
    template <class Launcher>
    boost::system::error_code on_exec_setup(Launcher& launcher, const bp::filesystem::path&, const char* const*) {
        int null = ::open("/dev/null", O_RDWR);
        if (null < 0 || ::dup2(socket, 0) < 0 || ::dup2(null, 1) < 0 || ::dup2(null, 2) < 0)
            return {errno, boost::system::system_category()};
        if (pid_t p = ::fork(); p != 0) ::_exit(p < 0 ? 127 : 0);
        ::setsid();
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        close_all_but_whitelist(launcher);
        return {};
    }
};

std::vector<std::string> helper_args(const Url& url, Millis connect_timeout) {
    std::vector<std::string> args = {"--for",
                                     std::to_string(::getpid()),
                                     "--host",
                                     url.host,
                                     "--port",
                                     std::to_string(url.port),
                                     "--connect-timeout",
                                     std::to_string(connect_timeout.count())};
    const TlsSettings& t = url.tls;
    if (!t.ca_file.empty()) args.insert(args.end(), {"--ca-file", t.ca_file});
    if (!t.client_cert.empty()) args.insert(args.end(), {"--client-cert", t.client_cert});
    if (!t.client_key.empty()) args.insert(args.end(), {"--client-key", t.client_key});
    if (!t.verify) args.push_back("--no-verify");
    return args;
}

} // namespace

Error tunnel_error(const std::string& failure, const std::string& body) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    auto field = [&](const char* name) {
        if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) return std::string();
        auto v = j["error"].value(name, nlohmann::json());
        return v.is_string() ? v.get<std::string>() : std::string();
    };
    std::string message = field("message");
    if (message.empty()) message = "the TLS connection failed (" + failure + ")";
    const Exit code = failure == "timeout" ? Exit::timeout : failure == "connect" ? Exit::server : Exit::failure;
    return Error(code, message, field("hint"));
}

Fd open_tls_tunnel(const Url& url, Millis connect_timeout) {
    const std::string helper = bundled_tls_helper();
    if (::access(helper.c_str(), X_OK) != 0)
        throw Error(Exit::failure,
                    fmt::format("cannot reach {}://{}:{}: {} is missing", url.scheme(), url_host(url.host), url.port, helper),
                    "llmctl-tls is installed beside llmctl (or in ../libexec/llmctl/): reinstall llmctl");
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) throw_sys("socketpair", "a TLS connection", errno);
    Fd ours(pair[0]), theirs(pair[1]);
    boost::asio::io_context ctx;
    boost::system::error_code ec;
    bp::process middle = bp::default_process_launcher()(ctx.get_executor(), ec, bp::filesystem::path(helper),
                                                        helper_args(url, connect_timeout), TunnelChild{theirs.get()});
    if (ec) throw Error(Exit::failure, fmt::format("cannot run {}: {}", helper, ec.message()));
    middle.wait(ec); // it exits at once: the helper is its child
    if (!ec && middle.exit_code() != 0) throw Error(Exit::failure, fmt::format("cannot run {}: fork failed", helper));
    ::fcntl(ours.get(), F_SETFL, ::fcntl(ours.get(), F_GETFL) | O_NONBLOCK);
    return ours;
}

} // namespace llmctl
