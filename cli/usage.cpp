// CLI11's parse errors reworded. CLI11 keeps no structured data in its exceptions, so each class
// is recognised by its type and the option it names is picked out of its message; what the user
// typed comes from the app itself (remaining() words), not from the message.

#include "usage.hpp"

#include "output.hpp"

#include "llmctl/errors.hpp"
#include "llmctl/strings.hpp"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <iostream>
#include <sstream>

namespace llmctl::cli {

namespace {

// The app and the subcommands parsed under it, outermost first.
std::vector<const CLI::App*> parsed_chain(const CLI::App& root) {
    std::vector<const CLI::App*> chain{&root};
    while (!chain.back()->get_subcommands().empty()) chain.push_back(chain.back()->get_subcommands().front());
    return chain;
}

const Command* table_entry(const std::string& name) {
    for (const auto& c : command_table())
        if (name == c.name) return &c;
    return nullptr;
}

std::vector<std::string> subcommand_names(const CLI::App& app) {
    std::vector<std::string> names;
    for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; })) names.push_back(s->get_name());
    return names;
}

// Every option name the user could have meant at this point of the command line: the global
// ones and those of each parsed (sub)command.
std::vector<std::string> known_options(const std::vector<const CLI::App*>& chain) {
    std::vector<std::string> known;
    for (const CLI::App* a : chain)
        for (const CLI::Option* o : a->get_options()) {
            for (const auto& l : o->get_lnames()) known.push_back("--" + l);
            for (const auto& s : o->get_snames()) known.push_back("-" + s);
        }
    return known;
}

// "-x", "--foo", "--foo=1"; not "-", "-3" or "-.5" (numbers, which a stray word may well be).
bool looks_like_option(const std::string& w) {
    return w.size() >= 2 && w[0] == '-' && !std::isdigit(static_cast<unsigned char>(w[1])) && w[1] != '.';
}

// The option names CLI11's message mentions, in order ("--json excludes --quiet").
std::vector<std::string> options_in(const std::string& msg, const std::vector<std::string>& known) {
    std::vector<std::string> found;
    std::istringstream words(msg);
    for (std::string w; words >> w;) {
        while (!w.empty() && (w.back() == ':' || w.back() == ',')) w.pop_back();
        if (std::find(known.begin(), known.end(), w) != known.end()) found.push_back(w);
    }
    return found;
}

// The option named `name` ("--json", "-q") in the parsed chain, or nullptr.
const CLI::Option* find_option(const std::vector<const CLI::App*>& chain, const std::string& name) {
    for (const CLI::App* app : chain)
        for (const CLI::Option* o : app->get_options())
            if (!o->get_positional() && o->check_name(name)) return o;
    return nullptr;
}

bool is_flag(const CLI::Option* o) { return o && o->get_expected_min() == 0; }

// The two options in the order they were typed (CLI11 names them in its own order).
std::pair<std::string, std::string> in_typed_order(const std::vector<const CLI::App*>& chain, const std::string& a, const std::string& b) {
    for (const CLI::App* app : chain)
        for (const CLI::Option* o : app->parse_order()) {
            if (o->check_name(a)) return {a, b};
            if (o->check_name(b)) return {b, a};
        }
    return {a, b};
}

std::string help_hint(const std::string& command) {
    if (command.empty()) return "llmctl --help lists the commands and the global options, with examples";
    return fmt::format("llmctl {} --help lists the options, with examples", command);
}

// "start: " (every message but the top level's names its command first).
std::string prefix(const std::string& command) { return command.empty() ? "" : command + ": "; }

// CLI11's own text, for a class no rule below covers: still in our format, lower-case first.
std::string plain(std::string msg) {
    if (!msg.empty() && std::isupper(static_cast<unsigned char>(msg[0])) &&
        !(msg.size() > 1 && std::isupper(static_cast<unsigned char>(msg[1]))))
        msg[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(msg[0])));
    return msg;
}

// CLI11 says "name is required" (a positional) or "A subcommand is required".
UsageError missing(const std::vector<const CLI::App*>& chain, const std::string& command, const std::string& msg) {
    const CLI::App* at = chain.back();
    const std::string suffix = " is required";
    std::string what = msg.ends_with(suffix) ? msg.substr(0, msg.size() - suffix.size()) : msg;
    if (what == "A subcommand") {
        const std::vector<std::string> subs = subcommand_names(*at);
        if (command.empty())
            return {"no command given", fmt::format("give one of: {}; llmctl --help says what each does", fmt::join(subs, ", "))};
        return {fmt::format("{} needs a subcommand: {}", command, fmt::join(subs, " or ")), help_hint(command)};
    }
    if (const CLI::Option* o = at->get_option_no_throw(what); o && o->get_positional()) {
        std::string type = o->get_type_name();
        if (type.empty())
            std::transform(what.begin(), what.end(), std::back_inserter(type), [](unsigned char c) { return std::toupper(c); });
        return {fmt::format("{} needs a {}", command, type), help_hint(command)};
    }
    return {prefix(command) + plain(msg), help_hint(command)};
}

// A word CLI11 could not place: a mistyped command or option, or a stray positional.
std::optional<UsageError> not_understood(const CLI::App& root, const std::vector<const CLI::App*>& chain, const std::string& command) {
    std::vector<std::string> words = root.remaining(true);
    const std::vector<std::string> known = known_options(chain);
    for (const auto& w : words)
        if (looks_like_option(w)) {
            // "for ps" unless it looks like a mistyped global option, which belongs to no command.
            auto meant = closest_match(w.substr(0, w.find('=')), known);
            bool global = meant && find_option({chain.front()}, *meant);
            return UsageError{fmt::format("unknown option {}{}{}", w, command.empty() || global ? "" : " for " + command,
                                          meant ? fmt::format(" (did you mean \"{}\"?)", *meant) : ""),
                              help_hint(command)};
        }
    if (words.empty()) return std::nullopt;
    const std::string& w = words.front();
    if (const CLI::App* at = chain.back(); at->get_require_subcommand_min() > 0 && at->get_subcommands().empty()) {
        const std::vector<std::string> subs = subcommand_names(*at);
        if (!command.empty())
            return UsageError{fmt::format("unknown {} subcommand \"{}\"{}", command, w, did_you_mean_suffix(w, subs)),
                              fmt::format("{} takes one of: {}; {}", command, fmt::join(subs, ", "), help_hint(command))};
    }
    if (command.empty()) {
        std::vector<std::string> names;
        for (const auto& c : command_table())
            if (!c.hidden) names.push_back(c.name);
        return UsageError{fmt::format("unknown command \"{}\"{}", w, did_you_mean_suffix(w, names)),
                          "run llmctl --help for the list of commands"};
    }
    UsageError u{fmt::format("{}: unexpected argument \"{}\"", command, w), help_hint(command)};
    if (const Command* c = table_entry(chain[1]->get_name()); c && c->after_dashdash == AfterDashdash::command)
        u.hint = fmt::format("a command to run goes after --, as in llmctl {} NAME -- {}; {}", command, w, u.hint);
    return u;
}

} // namespace

std::string parsed_command_name(const CLI::App& root) {
    std::string name;
    for (const CLI::App* a : parsed_chain(root))
        if (a != &root) name += (name.empty() ? "" : " ") + a->get_name();
    return name;
}

UsageError explain_parse_error(const CLI::App& root, const CLI::ParseError& e) {
    const auto chain = parsed_chain(root);
    const std::string command = parsed_command_name(root);
    const std::string msg = e.what();
    const std::vector<std::string> known = known_options(chain);
    const std::vector<std::string> named = options_in(msg, known);
    const std::string opt = named.empty() ? std::string() : named.front();

    // A word that was not understood explains most errors best, whichever CLI11 raised first:
    // `llmctl --versoin` is a mistyped option, not a missing command.
    if (dynamic_cast<const CLI::ExtrasError*>(&e) || dynamic_cast<const CLI::RequiredError*>(&e) || dynamic_cast<const CLI::Success*>(&e))
        if (auto u = not_understood(root, chain, command)) return *u;
    if (dynamic_cast<const CLI::RequiredError*>(&e)) return missing(chain, command, msg);
    if (dynamic_cast<const CLI::ExcludesError*>(&e) && named.size() == 2) {
        auto [first, second] = in_typed_order(chain, named[0], named[1]);
        return {fmt::format("{}{} and {} do not go together", prefix(command), first, second),
                fmt::format("give one of them; {}", help_hint(command))};
    }
    if (dynamic_cast<const CLI::RequiresError*>(&e) && named.size() == 2)
        return {fmt::format("{}{} needs {}", prefix(command), named[0], named[1]), help_hint(command)};
    if (dynamic_cast<const CLI::ValidationError*>(&e) && !opt.empty()) {
        // "--port: must be from 1 to 65535, not 0" (our validators write the part after the colon).
        std::string why = msg.substr(msg.find(':') + 1);
        while (!why.empty() && why.front() == ' ') why.erase(0, 1);
        return {fmt::format("{}{} {}", prefix(command), opt, why), help_hint(command)};
    }
    if (dynamic_cast<const CLI::ConversionError*>(&e) && !opt.empty()) {
        if (is_flag(find_option(chain, opt)))
            return {fmt::format("{}{} is a flag: it takes no value", prefix(command), opt), help_hint(command)};
        // "Could not convert: --seed = x"
        std::string value = msg.find(" = ") != std::string::npos ? msg.substr(msg.find(" = ") + 3) : std::string();
        return {fmt::format("{}{} cannot take \"{}\"", prefix(command), opt, value), help_hint(command)};
    }
    if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) && !opt.empty()) {
        if (is_flag(find_option(chain, opt)))
            return {fmt::format("{}{} is a flag: it takes no value", prefix(command), opt), help_hint(command)};
        if (msg.find("At Most") != std::string::npos)
            return {fmt::format("{}{} is given more than once", prefix(command), opt), help_hint(command)};
        return {fmt::format("{}{} needs a value", prefix(command), opt), help_hint(command)};
    }
    return {prefix(command) + plain(msg), help_hint(command)};
}

std::optional<UsageError> check_after_dashdash(const CLI::App& root, const Globals& g) {
    if (!g.after_dashdash) return std::nullopt;
    const std::string command = parsed_command_name(root);
    const auto chain = parsed_chain(root);
    const Command* c = chain.size() > 1 ? table_entry(chain[1]->get_name()) : nullptr;
    const AfterDashdash kind = c ? c->after_dashdash : AfterDashdash::nothing;
    const auto& words = *g.after_dashdash;
    if (kind == AfterDashdash::nothing && !words.empty())
        return UsageError{fmt::format("{} takes no arguments after --, got \"{}\"", command.empty() ? "llmctl" : command, words.front()),
                          help_hint(command)};
    if (kind == AfterDashdash::command && words.empty())
        return UsageError{fmt::format("{}: no command after --", command), fmt::format("llmctl {} NAME -- CMD ARGS...", command)};
    return std::nullopt;
}

int print_usage_error(const UsageError& u) {
    print_error(u.what, u.hint);
    return static_cast<int>(Exit::usage);
}

namespace {

// CLI11's usage line plus what comes after `--`.
class DashdashFormatter : public CLI::Formatter {
public:
    explicit DashdashFormatter(std::string tail) : tail_(std::move(tail)) {}
    std::string make_usage(const CLI::App* app, std::string name) const override {
        std::string line = CLI::Formatter::make_usage(app, std::move(name));
        while (!line.empty() && line.back() == '\n') line.pop_back();
        return line + " " + tail_ + "\n";
    }

private:
    std::string tail_;
};

} // namespace

void describe_after_dashdash(CLI::App& command, AfterDashdash kind) {
    if (kind == AfterDashdash::command)
        command.formatter(std::make_shared<DashdashFormatter>(command.get_name() == "exec" ? "-- CMD [ARGS...]" : "[-- CMD [ARGS...]]"));
    else if (kind == AfterDashdash::prompt)
        command.formatter(std::make_shared<DashdashFormatter>("[-- PROMPT...]"));
}

} // namespace llmctl::cli
