#include "llmctl/names.hpp"

#include <cctype>

namespace llmctl {

bool valid_model_name(const std::string& name) {
    if (name.empty() || name.size() > 64) return false;
    if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
    return name.find("..") == std::string::npos;
}

} // namespace llmctl
