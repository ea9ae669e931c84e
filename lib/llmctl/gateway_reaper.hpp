#pragma once
// `llmctl serve` runs reap itself every [serve] reap_every (a thread of its own), so a machine
// with a gateway needs no cron job; reap is safe beside another reap (cron's, or another serve's).

#include "llmctl/config.hpp"

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace llmctl {

class GatewayReaper {
public:
    using ConfigNow = std::function<std::shared_ptr<const Config>()>;
    using Log = std::function<void(const std::string&)>;

    // Reaps `state_dir` every `every` (0: never) with the config in force at each run.
    GatewayReaper(std::string state_dir, ConfigNow config, Millis every, Log log);
    ~GatewayReaper(); // stops, waiting for a reap under way to finish

    // A reload may change the period; the next run is `every` after the last one.
    void set_period(Millis every);

private:
    void loop();
    void reap_once();
    void preload_once();
    bool stopping();

    std::string state_dir_;
    ConfigNow config_;
    Log log_;
    std::mutex mu_;
    std::condition_variable wake_;
    Millis every_;
    bool stop_ = false;
    std::thread thread_;
};

} // namespace llmctl
