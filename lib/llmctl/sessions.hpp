#pragma once
// Chat sessions (`chat --session NAME`): the turns of a named conversation, kept in the state file
// (tables `sessions` and `messages`) so the next chat of that name continues it.

#include <string>
#include <utility>
#include <vector>

namespace llmctl {

using Messages = std::vector<std::pair<std::string, std::string>>; // role, content

// The messages of a session, oldest first, as stored (bytes, not checked for UTF-8); empty when
// the session or the state file does not exist.
Messages load_session(const std::string& state_dir, const std::string& session);

// Appends one turn (user + assistant) to a session, creating it, in one transaction.
void save_turn(const std::string& state_dir, const std::string& session, const std::string& model, const std::string& user,
               const std::string& assistant);

// Deletes a session's messages (chat's /reset), so the next chat does not bring them back.
void forget_session(const std::string& state_dir, const std::string& session);

} // namespace llmctl
