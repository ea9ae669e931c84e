// llmctl-tls: one TLS connection for llmctl, which maps no TLS library itself (see
// docs/ARCHITECTURE.md, "HTTPS"). Its standard input is one end of a socket pair; llmctl speaks
// plain HTTP on the other. It connects to --host:--port, verifies the server's certificate (the
// system's CAs, or --ca-file) and its name, and then copies bytes both ways until either side
// ends. When there is no connection to be had, it answers the request itself: HTTP 502 (504 for a
// timeout), an OpenAI-style error whose message says what failed, and an X-Llmctl-Tunnel header
// (connect | timeout | tls) that llmctl maps to its exit codes.
//
//   llmctl-tls --for PID --host HOST --port PORT [--ca-file F] [--client-cert F --client-key F]
//              [--no-verify] [--connect-timeout MS]
//
// --for names the llmctl process it serves (for a person reading `ps`). It ends when llmctl
// closes its end, or the server its connection.

#include "relay.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct Options {
    std::string host, port, ca_file, client_cert, client_key;
    bool verify = true;
    long connect_ms = 5000; // 0: no limit
};

// Why there is no connection: the answer llmctl gets instead of the server's.
struct Failure {
    int status = 0;   // 0: none
    std::string kind; // connect | timeout | tls
    std::string message, hint;
    explicit operator bool() const { return status != 0; }
};

Failure tls_failure(std::string message, std::string hint = "") { return {502, "tls", std::move(message), std::move(hint)}; }

// "5s", "1500ms": a connect_timeout as a person wrote it.
std::string duration_text(long ms) { return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms"; }

// The first certificate the chain's verification refused, and why.
struct VerifyFailure {
    int err = X509_V_OK;
    X509* cert = nullptr;
} g_refused;

int record_refusal(int ok, X509_STORE_CTX* store) {
    if (!ok && g_refused.err == X509_V_OK) {
        g_refused.err = X509_STORE_CTX_get_error(store);
        if (X509* c = X509_STORE_CTX_get_current_cert(store); c && X509_up_ref(c) == 1) g_refused.cert = c;
    }
    return ok;
}

std::string name_text(const X509_NAME* name) {
    BIO* b = BIO_new(BIO_s_mem());
    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
}

std::string date_text(const ASN1_TIME* t) {
    std::tm tm{};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return "an unreadable date";
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

// The names a certificate is for: its DNS and IP subject alternative names, else its common name.
std::string cert_names(X509* cert) {
    std::string out;
    auto add = [&](const std::string& n) { out += (out.empty() ? "" : ", ") + n; };
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS) {
            add(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                            static_cast<std::size_t>(ASN1_STRING_length(g->d.dNSName))));
        } else if (g->type == GEN_IPADD) {
            char buf[INET6_ADDRSTRLEN] = "";
            int len = ASN1_STRING_length(g->d.iPAddress);
            if (len == 4 || len == 16) inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(g->d.iPAddress), buf, sizeof buf);
            add(buf);
        }
    }
    GENERAL_NAMES_free(sans);
    if (out.empty()) {
        char cn[256] = "";
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) add(cn);
    }
    return out.empty() ? "no name" : out;
}

Failure describe_refusal(const Options& o) {
    const int err = g_refused.err;
    X509* cert = g_refused.cert;
    const std::string what = X509_verify_cert_error_string(err);
    const std::string whose = cert ? "the certificate of " + name_text(X509_get_subject_name(cert)) : "the server's certificate";
    switch (err) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return tls_failure("certificate verify failed: the server's certificate is for " + (cert ? cert_names(cert) : "other names") +
                               ", not " + o.host,
                           "connect by a name the certificate holds (the model's url), or give the server a certificate for " + o.host);
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return tls_failure("certificate verify failed: " + whose + " expired on " + (cert ? date_text(X509_get0_notAfter(cert)) : "?"),
                           "the server needs a renewed certificate (or this machine's clock is wrong)");
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return tls_failure("certificate verify failed: " + whose + " is not valid before " +
                               (cert ? date_text(X509_get0_notBefore(cert)) : "?"),
                           "check this machine's clock");
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE: {
        std::string issuer = cert ? " (issued by " + name_text(X509_get_issuer_name(cert)) + ")" : "";
        if (!o.ca_file.empty())
            return tls_failure("certificate verify failed: " + what + ": " + whose + issuer + " is not signed by the CA in ca_file " +
                                   o.ca_file,
                               "give the CA that signed the server's certificate as ca_file (a PEM file)");
        return tls_failure("certificate verify failed: " + what + ": " + whose + issuer + " is not signed by a CA this machine trusts",
                           "give the CA that signed it in the model's table: ca_file = \"/path/to/ca.pem\" (tls_verify = false "
                           "skips the check: for a test only)");
    }
    default: return tls_failure("certificate verify failed: " + whose + ": " + what);
    }
}

// A TLS error (in the handshake, or the server's alert on the first read of TLS 1.3, where a
// refused client certificate shows) in words a person can act on.
Failure describe_tls_error(const error_code& ec, const Options& o) {
    if (g_refused.err != X509_V_OK) return describe_refusal(o);
    const std::string where = o.host + ":" + o.port;
    if (ec.category() != asio::error::get_ssl_category()) {
        if (ec == asio::error::eof || ec == asio::error::connection_reset || ec == ssl::error::stream_truncated)
            return tls_failure("the server at " + where + " closed the connection during the TLS handshake (" + ec.message() + ")",
                               "does it speak TLS on that port? A plain HTTP server's url is http://");
        return tls_failure("TLS with " + where + " failed: " + ec.message());
    }
    const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    const char* text = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    const std::string why = text ? text : ec.message();
    switch (reason) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
        if (o.client_cert.empty())
            return tls_failure("the server at " + where + " requires a client certificate (" + why + ")",
                               "give one in the model's table: client_cert = \"cert.pem\" and client_key = \"key.pem\"");
        return tls_failure("the server at " + where + " refused the client certificate " + o.client_cert + " (" + why + ")",
                           "the server must trust the CA that signed it");
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
        return tls_failure("TLS handshake with " + where + " failed: " + why,
                           "does it speak TLS on that port? A plain HTTP server's url is http://");
    default: return tls_failure("TLS handshake with " + where + " failed: " + why);
    }
}

std::string openssl_reason() {
    unsigned long e = ERR_get_error();
    const char* r = e ? ERR_reason_error_string(e) : nullptr;
    return r ? r : "unknown error";
}

// The settings every connection shares: what to trust, and our certificate when the server asks.
Failure configure(ssl::context& ctx, const Options& o) {
    SSL_CTX* c = ctx.native_handle();
    if (o.verify) {
        if (!o.ca_file.empty()) {
            if (SSL_CTX_load_verify_locations(c, o.ca_file.c_str(), nullptr) != 1)
                return tls_failure("cannot use ca_file " + o.ca_file + ": " + openssl_reason(),
                                   "give a readable PEM file of CA certificates");
        } else if (SSL_CTX_set_default_verify_paths(c) != 1) {
            return tls_failure("cannot read this machine's CA certificates: " + openssl_reason(),
                               "install ca-certificates, or give ca_file in the model's table");
        }
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, record_refusal);
    } else {
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
    }
    if (!o.client_cert.empty()) {
        if (SSL_CTX_use_certificate_chain_file(c, o.client_cert.c_str()) != 1)
            return tls_failure("cannot use client_cert " + o.client_cert + ": " + openssl_reason(), "give a readable PEM certificate");
        const std::string& key = o.client_key.empty() ? o.client_cert : o.client_key;
        if (SSL_CTX_use_PrivateKey_file(c, key.c_str(), SSL_FILETYPE_PEM) != 1)
            return tls_failure("cannot use client_key " + key + ": " + openssl_reason(), "give the certificate's PEM private key");
        if (SSL_CTX_check_private_key(c) != 1) return tls_failure("client_key " + key + " is not the key of client_cert " + o.client_cert);
    }
    return {};
}

// The name the server is asked for (SNI) and the one its certificate must hold; a failure when
// that check cannot be set (it is never skipped).
Failure name_the_server(SSL* s, const Options& o) {
    error_code ec;
    asio::ip::make_address(o.host, ec);
    const bool literal = !ec;
    if (!literal) SSL_set_tlsext_host_name(s, o.host.c_str());
    if (!o.verify) return {};
    const int set = literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), o.host.c_str()) : SSL_set1_host(s, o.host.c_str());
    if (set != 1)
        return tls_failure("cannot check the server's certificate against the host " + o.host + ": " + openssl_reason(),
                           "give the url's host as a DNS name or a plain IP address");
    return {};
}

void write_all(int fd, const std::string& s) {
    for (std::size_t off = 0; off < s.size();) {
        ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        off += static_cast<std::size_t>(n);
    }
}

// The answer llmctl reads instead of the server's. The request is read (and dropped) until
// llmctl closes its end or 2 s pass, so that it reads the whole answer rather than a reset.
void answer(int fd, const Failure& f) {
    nlohmann::json err = {
        {"message", f.message}, {"type", f.kind == "tls" ? "tls_error" : "upstream_error"}, {"param", nullptr}, {"code", f.kind}};
    if (!f.hint.empty()) err["hint"] = f.hint;
    const std::string body = nlohmann::json{{"error", err}}.dump();
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    char sink[4096];
    while (::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {}
    write_all(fd, "HTTP/1.1 " + std::to_string(f.status) + (f.status == 504 ? " Gateway Timeout" : " Bad Gateway") +
                      "\r\nContent-Type: application/json\r\nX-Llmctl-Tunnel: " + f.kind +
                      "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    ::shutdown(fd, SHUT_WR);
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 2000) > 0 && ::recv(fd, sink, sizeof sink, 0) > 0) {}
}

// Ends this process when llmctl closes its end while the connection is being made (it gave up,
// or was killed): a server that accepts and never shakes hands, or a resolver that never answers,
// must not keep a helper alive, whatever connect_timeout says.
class HangupWatch {
public:
    HangupWatch() {
        if (::pipe2(stop_, O_CLOEXEC) == 0) thread_ = std::thread([this] { watch(); });
    }
    ~HangupWatch() {
        if (!thread_.joinable()) return;
        const char c = 0;
        while (::write(stop_[1], &c, 1) < 0 && errno == EINTR) {}
        thread_.join();
        ::close(stop_[0]);
        ::close(stop_[1]);
    }
    HangupWatch(const HangupWatch&) = delete;
    HangupWatch& operator=(const HangupWatch&) = delete;

private:
    void watch() {
        pollfd p[2] = {{0, POLLRDHUP, 0}, {stop_[0], POLLIN, 0}};
        while (::poll(p, 2, -1) < 0 && errno == EINTR) {}
        if (p[0].revents & (POLLRDHUP | POLLHUP | POLLERR)) ::_exit(0);
    }
    int stop_[2] = {-1, -1};
    std::thread thread_;
};

// Resolves, connects and shakes hands, all within --connect-timeout. A timeout answers at once
// and ends the process: a resolver still running cannot be cancelled, and must not delay the 504.
Failure connect_tls(asio::io_context& io, ssl::stream<tcp::socket>& tls, const Options& o) {
    Failure result;
    bool done = false;
    asio::steady_timer timer(io);
    tcp::resolver resolver(io);
    const std::string where = o.host + ":" + o.port;
    auto finish = [&](Failure f) {
        if (done) return;
        done = true;
        result = std::move(f);
        timer.cancel();
        resolver.cancel();
        error_code ignored;
        tls.next_layer().close(ignored);
    };
    if (o.connect_ms > 0) {
        timer.expires_after(std::chrono::milliseconds(o.connect_ms));
        timer.async_wait([&](const error_code& ec) {
            if (ec || done) return;
            answer(0, {504, "timeout", "no TLS connection to " + where + " within " + duration_text(o.connect_ms) + " (connect_timeout)",
                       "is the server up and reachable? connect_timeout in the model's table gives it longer"});
            ::_exit(0);
        });
    }
    resolver.async_resolve(o.host, o.port, [&](const error_code& ec, const tcp::resolver::results_type& found) {
        if (done) return;
        if (ec) return finish({502, "connect", "cannot resolve " + o.host + ": " + ec.message(), ""});
        asio::async_connect(tls.next_layer(), found, [&](const error_code& cec, const tcp::endpoint&) {
            if (done) return;
            if (cec) return finish({502, "connect", "cannot connect to " + where + ": " + cec.message(), ""});
            error_code ignored;
            tls.next_layer().set_option(tcp::no_delay(true), ignored);
            tls.async_handshake(ssl::stream_base::client, [&](const error_code& hec) {
                if (done) return;
                if (hec) return finish(describe_tls_error(hec, o));
                done = true; // connected: the timer's cancel below ends the run
                timer.cancel();
            });
        });
    });
    io.run();
    return result;
}

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr,
                 "llmctl-tls: %s\nusage: llmctl-tls --for PID --host HOST --port PORT [--ca-file F] [--client-cert F "
                 "--client-key F] [--no-verify] [--connect-timeout MS]\n(run by llmctl for an https:// url, with its "
                 "standard input a socket)\n",
                 why.c_str());
    std::exit(2);
}

// A whole number of milliseconds (0 or more), else usage.
long milliseconds(const std::string& flag, const std::string& text) {
    long ms = -1;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc() || end != text.data() + text.size() || ms < 0)
        usage(flag + " takes milliseconds (0 or more), not \"" + text + "\"");
    return ms;
}

// The command line llmctl gives it, parsed by hand: it is started for every https connection,
// and CLI11 (with the iostreams it brings) made its start 0.8 ms slower (5 -> 6 ms).
Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        if (a == "--for")
            value();
        else if (a == "--host")
            o.host = value();
        else if (a == "--port")
            o.port = value();
        else if (a == "--ca-file")
            o.ca_file = value();
        else if (a == "--client-cert")
            o.client_cert = value();
        else if (a == "--client-key")
            o.client_key = value();
        else if (a == "--no-verify")
            o.verify = false;
        else if (a == "--connect-timeout")
            o.connect_ms = milliseconds(a, value());
        else
            usage("unknown argument " + a);
    }
    if (o.host.empty() || o.port.empty()) usage("--host and --port are required");
    return o;
}

} // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    const Options o = parse(argc, argv);
    int type = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(0, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) usage("standard input is not a stream socket");

    asio::io_context io;
    ssl::context ctx(ssl::context::tls_client);
    if (Failure f = configure(ctx, o)) return answer(0, f), 0;
    ssl::stream<tcp::socket> tls(io, ctx);
    if (Failure f = name_the_server(tls.native_handle(), o)) return answer(0, f), 0;
    {
        HangupWatch watch;
        if (Failure f = connect_tls(io, tls, o)) return answer(0, f), 0;
    }

    asio::local::stream_protocol::socket plain(io);
    error_code ec;
    plain.assign(asio::local::stream_protocol(), 0, ec);
    if (ec) return 1;
    llmctl_tls::RelayEnd end = llmctl_tls::relay(io, tls, plain);
    // Refused before anything of an answer came (TLS 1.3 reports a refused client certificate on
    // the first read): llmctl gets the reason, not a cut connection.
    if (end.tls_side && end.to_plain == 0 && end.ec && end.ec != asio::error::eof && end.ec != ssl::error::stream_truncated) {
        Failure f = describe_tls_error(end.ec, o);
        if (end.ec.category() != asio::error::get_ssl_category()) // (a reset: the server went, as over plain TCP)
            f = {502, "connect", "the server at " + o.host + ":" + o.port + " cut the connection before answering: " + end.ec.message(),
                 ""};
        answer(0, f);
    }
    return 0;
}
