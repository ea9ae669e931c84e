#pragma once
// The starts of one `llmctl serve` process, shared: requests for the same stopped model that
// arrive together wait for one start_server call (start_server keeps processes apart through the
// state file, but the threads of one process share its identity, so they must not each start).

#include "llmctl/config.hpp"
#include "llmctl/units.hpp"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace llmctl {

class SharedStarts {
public:
    // How one request waits.
    struct Waiting {
        std::function<void(Millis elapsed)> progress; // every ~0.5 s while it waits
        std::function<bool()> gone;                   // the request's client left
    };

    // Ensures `model` runs (start_server), joining a start of it already under way in this
    // process. The start goes on while any request still wants it; a request whose client left
    // gets Error(interrupted). A failed start's Error reaches every request that waited for it.
    void ensure_running(const std::string& state_dir, const ModelConfig& model, const Waiting& w, const Config* config = nullptr);

private:
    struct Start;
    std::shared_ptr<Start> join_or_lead(const std::string& name, bool& leader);
    void lead(const std::string& state_dir, const ModelConfig& model, const std::shared_ptr<Start>& s, const Waiting& w,
              const Config* config);
    void follow(const std::shared_ptr<Start>& s, const Waiting& w);

    std::mutex mu_;
    std::map<std::string, std::shared_ptr<Start>> starts_;
};

} // namespace llmctl
