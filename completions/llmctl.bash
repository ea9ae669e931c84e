# bash completion for llmctl (subcommands and model names; options follow with later commands)
_llmctl() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "config start stop restart ps chat logs reap state --help --version" -- "$cur"))
    elif [[ "${COMP_WORDS[1]}" =~ ^(start|stop|restart|logs|chat)$ ]]; then
        COMPREPLY=($(compgen -W "$(llmctl config show --names 2>/dev/null)" -- "$cur"))
    elif [ "${COMP_WORDS[1]}" = config ] && [ "$COMP_CWORD" -eq 2 ]; then
        COMPREPLY=($(compgen -W "check show" -- "$cur"))
    elif [ "${COMP_WORDS[1]}" = state ] && [ "$COMP_CWORD" -eq 2 ]; then
        COMPREPLY=($(compgen -W "init path" -- "$cur"))
    fi
}
complete -F _llmctl llmctl
