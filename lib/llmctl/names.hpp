#pragma once
// What may be a model's (or an ad-hoc server's) name: it becomes a file name under the state
// dir (logs/NAME.log) and a word on the command line, so the rule is strict.

#include <string>

namespace llmctl {

// True for names matching [A-Za-z0-9][A-Za-z0-9._-]* without "..", at most 64 bytes.
bool valid_model_name(const std::string& name);

} // namespace llmctl
