#include "tls_front.hpp"

#include "log.hpp"
#include "relay.hpp"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>

#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace mock {

namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

struct TlsFront::Impl {
    ssl::context ctx{ssl::context::tls_server};
};

TlsFront::TlsFront(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsFront::~TlsFront() = default;

std::unique_ptr<TlsFront> TlsFront::make(const Options& options, std::string& error) {
    auto impl = std::make_unique<Impl>();
    boost::system::error_code ec;
    impl->ctx.use_certificate_chain_file(options.tls_cert, ec);
    if (ec) return error = "--tls-cert " + options.tls_cert + ": " + ec.message(), nullptr;
    impl->ctx.use_private_key_file(options.tls_key, ssl::context::pem, ec);
    if (ec) return error = "--tls-key " + options.tls_key + ": " + ec.message(), nullptr;
    if (!options.tls_client_ca.empty()) {
        impl->ctx.load_verify_file(options.tls_client_ca, ec);
        if (ec) return error = "--tls-client-ca " + options.tls_client_ca + ": " + ec.message(), nullptr;
        impl->ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    }
    return std::unique_ptr<TlsFront>(new TlsFront(std::move(impl)));
}

void TlsFront::serve(tcp::socket accepted, const std::function<void(tcp::socket)>& serve_plain) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return;
    boost::system::error_code ec;
    tcp::socket inner(accepted.get_executor());
    inner.assign(tcp::v4(), pair[1], ec); // (only read, write and shutdown are asked of it)
    if (ec) {
        ::close(pair[0]);
        ::close(pair[1]);
        return;
    }
    net::io_context io;
    net::local::stream_protocol::socket plain(io);
    plain.assign(net::local::stream_protocol(), pair[0], ec);
    try {
        std::thread(serve_plain, std::move(inner)).detach();
    } catch (const std::system_error&) {
        return;
    }
    const auto protocol = accepted.local_endpoint(ec).protocol();
    tcp::socket raw(io);
    raw.assign(protocol, accepted.release(ec), ec);
    raw.set_option(tcp::no_delay(true), ec); // each SSE event must leave at once (as serve_connection sets)
    ssl::stream<tcp::socket> tls(std::move(raw), impl_->ctx);
    tls.handshake(ssl::stream_base::server, ec);
    if (ec) {
        log_line("tls handshake failed: " + ec.message());
        return;
    }
    llmctl_tls::relay(io, tls, plain);
}

} // namespace mock
