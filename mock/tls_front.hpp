#pragma once
// --tls-cert/--tls-key (and --tls-client-ca): the mock serves HTTPS. Each accepted connection's
// handshake and its bytes both ways run on a thread of their own (llmctl-tls's relay), while the
// usual handlers serve the plain end of a socket pair, unchanged.

#include "options.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <string>

namespace mock {

class TlsFront {
public:
    // nullptr with `error` set when a file cannot be used.
    static std::unique_ptr<TlsFront> make(const Options& options, std::string& error);
    ~TlsFront();

    // Shakes hands on `accepted` and relays it to a socket that `serve_plain` gets (on a thread
    // of its own); returns when either side ends. A failed handshake is logged.
    void serve(boost::asio::ip::tcp::socket accepted, const std::function<void(boost::asio::ip::tcp::socket)>& serve_plain);

private:
    struct Impl;
    explicit TlsFront(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace mock
