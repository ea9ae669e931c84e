# fish completion for llmctl(1): subcommands, options, model and server names.

# Model names (config) and/or server names (state dir), honouring --config/--state-dir on the line.
function __llmctl_names --argument-names which
    set -l tokens (commandline -opc)
    set -l pass
    for i in (seq 2 (count $tokens))
        if contains -- $tokens[$i] --config --state-dir; and test $i -lt (count $tokens)
            set -a pass $tokens[$i] $tokens[(math $i + 1)]
        end
    end
    begin
        test "$which" != servers; and $tokens[1] $pass config show --names 2>/dev/null
        test "$which" != models; and $tokens[1] $pass ps -q -a 2>/dev/null
    end | sort -u
end

# True when the subcommand's first positional (the name) has not been given yet.
function __llmctl_needs_name
    set -l tokens (commandline -opc)
    set -l seen 0
    for t in $tokens[2..-1]
        switch $t
            case --config --state-dir --port --timeout -s --system --max-tokens --temperature --top-p --seed --stop --connect-timeout --first-token-timeout --stall-timeout --queue-timeout --session -n --lines --idle-timeout
                set seen (math $seen - 1) # its value follows
            case '-*'
            case '*'
                set seen (math $seen + 1)
        end
    end
    test $seen -le 1
end

set -l cmds config start stop restart apply ps chat exec serve logs events metrics top reap state
complete -c llmctl -f
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -l config -r -F -d 'Config file'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -l state-dir -r -a '(__fish_complete_directories)' -d 'State directory'
complete -c llmctl -s v -l verbose -d 'More detail on stderr'
complete -c llmctl -n "not __fish_seen_subcommand_from ps" -s q -l quiet -d 'No progress or notes on stderr'
complete -c llmctl -s h -l help -d 'Print help'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -l version -d 'Print the version'

complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a config -d 'Validate or show the configuration'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a start -d 'Start a server (idempotent), print its URL'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a stop -d 'Stop servers'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a restart -d 'Stop, then start a server'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a apply -d 'Restart changed models, stop removed ones'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a ps -d 'List servers'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a chat -d 'Talk to a model'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a exec -d 'Run a command against a server'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a serve -d 'One OpenAI endpoint for every model'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a logs -d 'Show or follow a server log'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a events -d 'Show or follow what happened to the servers'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a metrics -d 'Print Prometheus metrics from the state'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a top -d 'Full-screen view of servers, slots, pools and events'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a reap -d 'Clean up dead, orphaned and idle servers'
complete -c llmctl -n "not __fish_seen_subcommand_from $cmds" -a state -d 'Create or migrate the state file'

complete -c llmctl -n "__fish_seen_subcommand_from config; and not __fish_seen_subcommand_from check show" -a 'check show'
complete -c llmctl -n "__fish_seen_subcommand_from show" -l json -d 'Print JSON'
complete -c llmctl -n "__fish_seen_subcommand_from show" -l names -d 'Model names only'
complete -c llmctl -n "__fish_seen_subcommand_from state; and not __fish_seen_subcommand_from init path" -a 'init path'

complete -c llmctl -n "__fish_seen_subcommand_from start restart chat exec; and __llmctl_needs_name" -a '(__llmctl_names models)'
complete -c llmctl -n "__fish_seen_subcommand_from stop" -a '(__llmctl_names both)'
complete -c llmctl -n "__fish_seen_subcommand_from logs; and __llmctl_needs_name" -a '(__llmctl_names both)'

complete -c llmctl -n "__fish_seen_subcommand_from start" -l port -x -d 'Use this port'
complete -c llmctl -n "__fish_seen_subcommand_from start" -l timeout -x -d 'Startup timeout'
complete -c llmctl -n "__fish_seen_subcommand_from start" -l health -x -a 'tcp /health /' -d 'Ad-hoc server readiness: PATH or tcp'
complete -c llmctl -n "__fish_seen_subcommand_from start" -l no-wait -d 'Return once spawned'
complete -c llmctl -n "__fish_seen_subcommand_from start" -l dry-run -d 'Say what a start would do, change nothing'
complete -c llmctl -n "__fish_seen_subcommand_from start" -l json -d 'Print a JSON object'

complete -c llmctl -n "__fish_seen_subcommand_from stop" -l all -d 'Stop every server'
complete -c llmctl -n "__fish_seen_subcommand_from stop" -l timeout -x -d 'Grace period before SIGKILL'
complete -c llmctl -n "__fish_seen_subcommand_from stop restart" -l no-drain -d 'Do not wait for chats in flight'
complete -c llmctl -n "__fish_seen_subcommand_from stop restart" -l force -d 'Do not wait for chats in flight'
complete -c llmctl -n "__fish_seen_subcommand_from exec" -l keep -d 'Leave the server running afterwards'
complete -c llmctl -n "__fish_seen_subcommand_from apply" -s n -l dry-run -d 'Print the plan, change nothing'
complete -c llmctl -n "__fish_seen_subcommand_from apply" -l json -d 'Print a JSON array'

complete -c llmctl -n "__fish_seen_subcommand_from serve" -l listen -x -d 'Address to serve on (HOST:PORT)'
complete -c llmctl -n "__fish_seen_subcommand_from serve" -l api-key-env -x -d 'Variable holding the key clients send'
complete -c llmctl -n "__fish_seen_subcommand_from serve" -l no-auth -d 'Allow a non-loopback address without a key'
complete -c llmctl -n "__fish_seen_subcommand_from serve" -l cors-origin -x -d 'Browser origin allowed to call'
complete -c llmctl -n "__fish_seen_subcommand_from serve" -l max-body -x -d 'Largest request body'
complete -c llmctl -n "__fish_seen_subcommand_from serve" -l header-timeout -x -d 'Time for the headers'
complete -c llmctl -n "__fish_seen_subcommand_from serve" -l drain-timeout -x -d 'Time for requests in flight on SIGTERM'
complete -c llmctl -n "__fish_seen_subcommand_from serve" -l max-queue -x -d 'Requests waiting per model before 429'
complete -c llmctl -n "__fish_seen_subcommand_from serve" -l allow-host -x -d 'Another Host name clients may use'
complete -c llmctl -n "__fish_seen_subcommand_from serve" -l reap-every -x -d 'How often serve runs reap'

complete -c llmctl -n "__fish_seen_subcommand_from ps" -s a -l all -d 'Include failed servers'
complete -c llmctl -n "__fish_seen_subcommand_from ps" -l json -d 'Print a JSON array'
complete -c llmctl -n "__fish_seen_subcommand_from ps" -s q -l quiet -d 'Names only'
complete -c llmctl -n "__fish_seen_subcommand_from ps" -l health -d 'Probe health endpoints'
complete -c llmctl -n "__fish_seen_subcommand_from ps" -l gateways -d 'List running gateways (llmctl serve)'
complete -c llmctl -n "__fish_seen_subcommand_from ps" -l pools -d 'List the memory pools'

complete -c llmctl -n "__fish_seen_subcommand_from chat" -s s -l system -x -d 'System message'
complete -c llmctl -n "__fish_seen_subcommand_from chat" -l max-tokens -x -d 'Upper bound on generated tokens'
complete -c llmctl -n "__fish_seen_subcommand_from chat" -l temperature -x -d 'Sampling temperature'
complete -c llmctl -n "__fish_seen_subcommand_from chat" -l top-p -x -d 'Nucleus sampling'
complete -c llmctl -n "__fish_seen_subcommand_from chat" -l seed -x -d 'Sampling seed'
complete -c llmctl -n "__fish_seen_subcommand_from chat" -l stop -x -d 'Stop sequence'
complete -c llmctl -n "__fish_seen_subcommand_from chat" -l no-stream -d 'Ask for the whole answer at once'
complete -c llmctl -n "__fish_seen_subcommand_from chat" -l json -d 'Print a JSON object'
complete -c llmctl -n "__fish_seen_subcommand_from chat" -l no-start -d 'Do not start the server'
complete -c llmctl -n "__fish_seen_subcommand_from chat" -l timeout -x -d 'Total time for one answer'
complete -c llmctl -n "__fish_seen_subcommand_from chat" -l connect-timeout -x -d 'Connect timeout'
complete -c llmctl -n "__fish_seen_subcommand_from chat" -l first-token-timeout -x -d 'Time to the first token'
complete -c llmctl -n "__fish_seen_subcommand_from chat" -l stall-timeout -x -d 'Longest silence between tokens'
complete -c llmctl -n "__fish_seen_subcommand_from chat" -l queue-timeout -x -d 'Longest wait for a slot'
complete -c llmctl -n "__fish_seen_subcommand_from chat" -l session -x -d 'Keep the conversation under this name'

complete -c llmctl -n "__fish_seen_subcommand_from logs" -s n -l lines -x -d 'Last N lines'
complete -c llmctl -n "__fish_seen_subcommand_from logs" -s f -l follow -d 'Keep printing new output'
complete -c llmctl -n "__fish_seen_subcommand_from logs" -l path -d 'Print the log path'
complete -c llmctl -n "__fish_seen_subcommand_from logs" -l all -d 'Every server'
complete -c llmctl -n "__fish_seen_subcommand_from logs" -l rotate -d 'Rotate now'
complete -c llmctl -n "__fish_seen_subcommand_from events" -a '(__llmctl_names both)'
complete -c llmctl -n "__fish_seen_subcommand_from events" -s f -l follow -d 'Keep printing new events'
complete -c llmctl -n "__fish_seen_subcommand_from events" -l json -d 'One JSON object a line'
complete -c llmctl -n "__fish_seen_subcommand_from events" -l since -x -d 'Only the last DUR'
complete -c llmctl -n "__fish_seen_subcommand_from events" -s n -l lines -x -d 'Only the last N events'
complete -c llmctl -n "__fish_seen_subcommand_from metrics" -s o -l output -r -F -d 'Write to FILE, replaced atomically'
complete -c llmctl -n "__fish_seen_subcommand_from top" -s d -l interval -x -d 'Refresh every DUR'
complete -c llmctl -n "__fish_seen_subcommand_from top" -l once -d 'Print the view once as text'

complete -c llmctl -n "__fish_seen_subcommand_from reap" -s n -l dry-run -d 'Change nothing'
complete -c llmctl -n "__fish_seen_subcommand_from reap" -l idle-timeout -x -d 'Stop servers idle longer than this'
complete -c llmctl -n "__fish_seen_subcommand_from reap" -l json -d 'Print a JSON array'
complete -c llmctl -n "__fish_seen_subcommand_from reap" -l rebuild -d 'Rebuild an unreadable state file'
