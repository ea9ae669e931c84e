#!/usr/bin/env zsh -f
# Prints, one per line, the candidates zsh's completion system offers for a command line.
# Usage: zsh -f zsh_complete.zsh COMPLETION_DIR 'llmctl st'
# It runs a real interactive zsh in a pty (zpty) with compinit and the completion dir in
# fpath, types the line and a TAB, and records what reaches compadd (the function every
# completer ends in) in a file.
emulate -L zsh
zmodload zsh/zpty || exit 2
local compdir=$1 line=$2
local out=$(mktemp) rc=$(mktemp -d)
trap 'rm -rf $out $rc; zpty -d z 2>/dev/null' EXIT
cat > $rc/.zshrc <<RC
PS1='> '
fpath=($compdir \$fpath)
autoload -Uz compinit && compinit -u -d $rc/zcompdump
zstyle ':completion:*' list-grouped false
compadd() {
    # -O/-A/-D only compute arrays for other completers; pass them through untouched.
    if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd "\$@"; return; fi
    local -a __hits
    builtin compadd -A __hits "\$@"
    (( \$#__hits )) && print -rl -- \$__hits >> $out
    builtin compadd "\$@"
}
_capture_done() { print -r -- __DONE__ >> $out }
zle -C _capture_complete complete-word _main_complete
_capture() { zle _capture_complete; _capture_done }
zle -N _capture
bindkey '^I' _capture
RC
export ZDOTDIR=$rc
zpty z zsh -i
zpty -w -n z "$line"$'\t'
local i
for i in {1..200}; do
    grep -qx __DONE__ $out 2>/dev/null && break
    sleep 0.05
done
grep -qx __DONE__ $out || { print -u2 "zsh_complete: no completion after 10 s"; exit 2 }
grep -vx __DONE__ $out | sort -u
