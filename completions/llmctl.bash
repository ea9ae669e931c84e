# bash completion for llmctl(1): subcommands, options, model and server names.
# Names come from `llmctl config show --names` (models) and `llmctl ps -q -a` (servers,
# ad-hoc ones included), honouring a --config / --state-dir given earlier on the line.

_llmctl_names() { # $1: models | servers | both
    local -a pass=()
    [[ -n $_llmctl_config ]] && pass+=(--config "$_llmctl_config")
    [[ -n $_llmctl_state ]] && pass+=(--state-dir "$_llmctl_state")
    {
        [[ $1 != servers ]] && "$_llmctl_bin" "${pass[@]}" config show --names 2>/dev/null
        [[ $1 != models ]] && "$_llmctl_bin" "${pass[@]}" ps -q -a 2>/dev/null
    } | sort -u
}

_llmctl() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local _llmctl_bin=${COMP_WORDS[0]} _llmctl_config= _llmctl_state=
    local globals="--config --state-dir -v --verbose -q --quiet -h --help --version"
    local cmd= sub= npos=0 dashdash=0 after=0 i w
    COMPREPLY=()
    # Walk the words before the cursor: global options, the subcommand, its positionals.
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if ((dashdash)); then
            ((after++))
            continue
        fi
        case $w in
        --config) _llmctl_config=${COMP_WORDS[i+1]}; ((i++)); continue ;;
        --state-dir) _llmctl_state=${COMP_WORDS[i+1]}; ((i++)); continue ;;
        --port | --timeout | -s | --system | --max-tokens | --temperature | --top-p | --seed | --stop | \
            --connect-timeout | --first-token-timeout | --stall-timeout | --queue-timeout | --session | \
            --lines | --idle-timeout | --since)
            ((i++)); continue ;;
        -n) [[ $cmd == logs || $cmd == events ]] && ((i++)); continue ;;
        -o | --output) [[ $cmd == metrics ]] && ((i++)); continue ;;
        -d | --interval) [[ $cmd == top ]] && ((i++)); continue ;;
        --) dashdash=1; continue ;;
        -*) continue ;;
        esac
        if [[ -z $cmd ]]; then
            cmd=$w
        elif [[ ($cmd == config || $cmd == state) && -z $sub ]]; then
            sub=$w
        else
            ((npos++))
        fi
    done

    # Values of options.
    case $prev in
    --config) COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return ;;
    --state-dir) COMPREPLY=($(compgen -d -- "$cur")); compopt -o filenames 2>/dev/null; return ;;
    --port | --timeout | -s | --system | --max-tokens | --temperature | --top-p | --seed | --stop | \
        --connect-timeout | --first-token-timeout | --stall-timeout | --queue-timeout | --session | \
        --lines | --idle-timeout | --since)
        return ;;
    -n) [[ $cmd == logs || $cmd == events ]] && return ;;
    -d | --interval) [[ $cmd == top ]] && return ;;
    -o | --output)
        if [[ $cmd == metrics ]]; then COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return; fi ;;
    esac

    if ((dashdash)); then # start NAME -- CMD ARGS..., exec NAME -- CMD ARGS...; chat: prompt words
        [[ $cmd == start || $cmd == exec ]] || return
        if ((after == 0)); then COMPREPLY=($(compgen -c -- "$cur")); else COMPREPLY=($(compgen -f -- "$cur")); fi
        return
    fi

    local opts= names=
    case $cmd in
    "")
        # `state` is plumbing: like git's plumbing commands it is left out until its name is
        # unambiguous, so that `st<TAB>` offers the two everyday commands, start and stop.
        if [[ $cur == -* ]]; then opts=$globals; else opts="config start stop restart apply ps chat exec serve logs events metrics top reap"; fi
        [[ $cur == stat* ]] && opts+=" state"
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return ;;
    config)
        if [[ -z $sub ]]; then opts="check show"; elif [[ $sub == show ]]; then opts="--json --names"; fi ;;
    state) [[ -z $sub ]] && opts="init path" ;;
    start) opts="--port --timeout --health --no-wait --json --dry-run --"; ((npos == 0)) && names=models ;;
    stop) opts="--all --timeout --no-drain --force"; names=both ;;
    restart) opts="--no-drain --force"; ((npos == 0)) && names=models ;;
    apply) opts="-n --dry-run --json" ;;
    exec) opts="--keep --"; ((npos == 0)) && names=models ;;
    ps) opts="-a --all --json -q --quiet --health --gateways --pools" ;;
    serve) opts="--listen --api-key-env --no-auth --cors-origin --allow-host --max-body --header-timeout --drain-timeout --max-queue --reap-every" ;;
    chat)
        opts="-s --system --max-tokens --temperature --top-p --seed --stop --no-stream --json --no-start
              --timeout --connect-timeout --first-token-timeout --stall-timeout --queue-timeout --session"
        ((npos == 0)) && names=models ;;
    logs) opts="-n --lines -f --follow --path --all --rotate"; ((npos == 0)) && names=both ;;
    events) opts="-f --follow --json --since -n --lines"; names=both ;;
    metrics) opts="-o --output" ;;
    top) opts="-d --interval --once" ;;
    reap) opts="-n --dry-run --idle-timeout --json --rebuild" ;;
    *) return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts -h --help" -- "$cur"))
    elif [[ -n $names ]]; then
        COMPREPLY=($(compgen -W "$(_llmctl_names "$names")" -- "$cur"))
    elif [[ -n $opts && ($cmd == config || $cmd == state) ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    fi
}
complete -F _llmctl llmctl
