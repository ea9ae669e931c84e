#pragma once
// Bytes both ways between a TLS stream and a plain one, on one io_context (llmctl-tls, the
// client's end; the mock server's --tls-cert, the server's end).

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>

namespace llmctl_tls {

// How the relay ended: the first side to end (EOF or an error), and what went each way.
struct RelayEnd {
    boost::system::error_code ec;
    bool tls_side = false; // the TLS side ended first (else the plain side)
    std::uint64_t to_plain = 0, to_tls = 0;
};

namespace detail {

template <class From, class To>
class Pump : public std::enable_shared_from_this<Pump<From, To>> {
public:
    Pump(From& from, To& to, std::uint64_t& count, std::function<void(const boost::system::error_code&)> done)
        : from_(from), to_(to), count_(count), done_(std::move(done)) {}
    void start() { read(); }

private:
    void read() {
        from_.async_read_some(boost::asio::buffer(buf_),
                              [self = this->shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                                  if (ec) return self->done_(ec);
                                  boost::asio::async_write(self->to_, boost::asio::buffer(self->buf_.data(), n),
                                                           [self, n](const boost::system::error_code& wec, std::size_t) {
                                                               if (wec) return self->done_(wec);
                                                               self->count_ += n;
                                                               self->read();
                                                           });
                              });
    }
    From& from_;
    To& to_;
    std::uint64_t& count_;
    std::function<void(const boost::system::error_code&)> done_;
    std::array<char, 16 * 1024> buf_{};
};

} // namespace detail

// Runs `io` until either direction ends (to_plain tells the client's end whether anything of an
// answer went on before a TLS error).
template <class Tls, class Plain>
RelayEnd relay(boost::asio::io_context& io, Tls& tls, Plain& plain) {
    RelayEnd end;
    bool ended = false;
    auto finish = [&](bool tls_side) {
        return [&, tls_side](const boost::system::error_code& ec) {
            if (ended) return;
            ended = true;
            end.ec = ec;
            end.tls_side = tls_side;
            io.stop();
        };
    };
    std::make_shared<detail::Pump<Tls, Plain>>(tls, plain, end.to_plain, finish(true))->start();
    std::make_shared<detail::Pump<Plain, Tls>>(plain, tls, end.to_tls, finish(false))->start();
    io.restart();
    io.run();
    return end;
}

} // namespace llmctl_tls
