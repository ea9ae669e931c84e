#pragma once
// Process identity: (pid, start ticks, boot id). A PID alone is not an identity: PIDs are
// recycled, and an orphan stays a zombie until PID 1 reaps it.

#include "llmctl/units.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace llmctl {

struct Identity {
    pid_t pid = 0;
    std::uint64_t start_ticks = 0; // /proc/PID/stat field 22
    std::string boot_id;           // /proc/sys/kernel/random/boot_id

    bool operator==(const Identity&) const = default;
};

// The parsed fields of /proc/PID/stat that llmctl uses.
struct ProcStat {
    pid_t pid = 0;
    char state = '?'; // R S D Z T …
    pid_t ppid = 0;
    pid_t pgrp = 0;
    pid_t session = 0;
    std::uint64_t start_ticks = 0;
    std::uint64_t rss_pages = 0;
};

// Parses the text of a /proc/PID/stat file (comm may hold spaces and parentheses).
std::optional<ProcStat> parse_proc_stat(const std::string& text);

// Reads /proc/PID/stat; nullopt when the process does not exist.
std::optional<ProcStat> read_proc_stat(pid_t pid);

// This boot's id (read once).
const std::string& boot_id();

// The identity of a running process, or nullopt if it is gone.
std::optional<Identity> identity_of(pid_t pid);

// Our own identity.
Identity self_identity();

// True when the process exists, is not a zombie, and its start ticks and boot id match.
bool is_alive(const Identity& id);
// As is_alive, but a look less than `max_age` old at the same identity is answered again (a
// gateway relays thousands of requests a second to the same server: reading its /proc/PID/stat
// for each was a tenth of the relay's CPU). For a check whose failure is caught anyway.
bool is_alive_lately(const Identity& id, Millis max_age);

// Every PID currently in /proc.
std::vector<pid_t> list_pids();

// True when /proc/PID belongs to this user (our effective uid): the only processes whose
// environment llmctl reads and whose markers it trusts.
bool owned_by_me(pid_t pid);

// The entries of /proc/PID/environ ("KEY=value", in order; empty when unreadable or gone).
std::vector<std::string> proc_environ(pid_t pid);

// The arguments of /proc/PID/cmdline (empty when unreadable, gone, or a kernel thread).
std::vector<std::string> proc_cmdline(pid_t pid);

// /proc/PID/comm, the kernel's short name of the process ("?" when gone).
std::string proc_comm(pid_t pid);

// Milliseconds since the epoch at which a process with these start ticks started.
std::int64_t process_started_ms(std::uint64_t start_ticks);

// Clock ticks per second (for uptime from start ticks).
long clock_ticks();

// Milliseconds since the epoch.
std::int64_t now_ms();

// Reaps every child of this process that has exited (a long-running parent, `llmctl serve`, of the
// servers it started). Returns how many.
int reap_exited_children();

} // namespace llmctl
