# Shell completions: bash (sourced, queried like readline would), zsh and fish (syntax check
# plus real completion queries in the real shells), and every option of every subcommand's
# --help present in all three scripts, so the scripts cannot drift from the code.
. "$TEST_LIB"
src=$(cd "$(dirname "$TEST_LIB")/../.." && pwd)
comp="$src/completions"
mock_config
mock_model alpha
mock_model beta
mkdir -p "$T/bin"
ln -s "$LLMCTL_BIN" "$T/bin/llmctl" # the scripts run the llmctl the user typed, found on PATH ($T/bin is first there: lib.sh)
# An ad-hoc server: not in the config, but `stop` and `logs` should offer it.
llmctl start adhoc -q -- "$MOCK_BIN" --port {port} >/dev/null

# bash: COMPREPLY for a command line whose last word is being completed.
bq() {
  bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _llmctl; printf "%s\n" "${COMPREPLY[@]}" | sort' \
    _ "$comp/llmctl.bash" "$@"
}
# want "WHAT" "GOT" "EXPECTED...": exact set, one per line.
want() { [ "$2" = "$(printf '%s\n' "${@:3}" | sort)" ] || fail "$1: got [$(echo $2)], want [${*:3}]"; }
want "bash: llmctl st" "$(bq llmctl st)" start stop
want "bash: llmctl stat" "$(bq llmctl stat)" state
want "bash: llmctl ''" "$(bq llmctl '')" apply chat config events exec logs metrics ps reap restart serve start stop top
want "bash: llmctl logs" "$(bq llmctl logs '')" adhoc alpha beta
want "bash: llmctl start" "$(bq llmctl start '')" alpha beta
want "bash: llmctl stop a" "$(bq llmctl stop alpha a)" adhoc alpha
want "bash: llmctl chat al" "$(bq llmctl -v chat al)" alpha
want "bash: chat NAME (the prompt)" "$(bq llmctl chat alpha '')"
want "bash: llmctl chat --ma" "$(bq llmctl chat --ma)" --max-tokens
want "bash: llmctl config" "$(bq llmctl config '')" check show
want "bash: llmctl logs -n 5" "$(bq llmctl logs -n 5 b)" beta
want "bash: reap -n (a flag)" "$(bq llmctl reap -n --j)" --json
# --config earlier on the line is passed on to the name lookup.
printf '[models.gamma]\ncommand = ["x"]\n' >"$T/other.toml"
want "bash: --config FILE start" "$(bq llmctl --config "$T/other.toml" start '')" gamma
want "bash: --config value" "$(bq llmctl --config "$T/oth")" "$T/other.toml"
want "bash: metrics -o FILE" "$(bq llmctl metrics -o "$T/oth")" "$T/other.toml"
want "bash: start NAME -- CMD" "$(bq llmctl start x -- llmct)" llmctl
want "bash: llmctl exec" "$(bq llmctl exec '')" alpha beta
want "bash: exec NAME -- CMD" "$(bq llmctl exec alpha -- llmct)" llmctl
want "bash: stop --no" "$(bq llmctl stop --no)" --no-drain
want "bash: chat NAME -- (prompt words, not commands)" "$(bq llmctl chat alpha -- ls)"

# Every long option of every subcommand's --help is completed by all three scripts.
# (The subcommands as llmctl --help lists them: a new one without completions fails here.)
cmds=$(llmctl --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && NF {print $1}')
[ "$(echo "$cmds" | wc -l)" -ge 11 ] || fail "subcommands not parsed from llmctl --help: $cmds"
for cmd in "" $cmds; do
  opts=$(llmctl $cmd --help | sed -n '/^Options:/,/^$/p' | grep -oE '^ +(-[a-z],)?--[a-z][a-z-]*' | grep -oE -- '--[a-z-]+' | sort -u)
  [ -n "$opts" ] || fail "no options parsed from llmctl $cmd --help"
  for o in $opts; do
    [ "$o" = --help ] && continue
    grep -q -- "$o\b" "$comp/llmctl.bash" || fail "bash completion lacks $cmd $o"
    grep -q -- "$o\b" "$comp/_llmctl" || fail "zsh completion lacks $cmd $o"
    grep -qE -- "-l ${o#--}( |$)" "$comp/llmctl.fish" || fail "fish completion lacks $cmd $o"
  done
done

# zsh: syntax, then real queries through compinit in an interactive zsh (zpty).
zsh -n "$comp/_llmctl" || fail "zsh -n _llmctl"
zq() { zsh -f "$src/tests/completion/zsh_complete.zsh" "$comp" "$1" | grep -v '^-' || true; }
got=$(zq 'llmctl st')
echo "$got" | grep -qx start && echo "$got" | grep -qx stop || fail "zsh: llmctl st offered [$(echo $got)]"
want "zsh: llmctl logs" "$(zq 'llmctl logs ')" adhoc alpha beta
want "zsh: llmctl restart" "$(zq 'llmctl restart ')" alpha beta
# After start's or exec's NAME only `--` (a stray word is a usage error), then commands.
zq_all() { zsh -f "$src/tests/completion/zsh_complete.zsh" "$comp" "$1" || true; }
want "zsh: start NAME (only --)" "$(zq_all 'llmctl start alpha ')" --
want "zsh: exec NAME (only --)" "$(zq_all 'llmctl exec alpha ')" --
want "zsh: start NAME -- CMD" "$(zq 'llmctl start x -- llmct')" llmctl
# Options that exclude each other are not offered together.
got=$(zq_all 'llmctl ps --json -')
echo "$got" | grep -qx -- --health && ! echo "$got" | grep -qxE -- '-q|--quiet' || fail "zsh: ps --json - offered [$(echo $got)]"
got=$(zq_all 'llmctl start alpha --no-wait --')
echo "$got" | grep -qx -- --json && ! echo "$got" | grep -qx -- --timeout || fail "zsh: start --no-wait -- offered [$(echo $got)]"

# fish: syntax, then real queries with `complete -C`.
fish -n "$comp/llmctl.fish" || fail "fish -n llmctl.fish"
fq() { fish --no-config -c "source '$comp/llmctl.fish'; complete -C '$1'" | cut -f1 | sort; }
got=$(fq 'llmctl st')
echo "$got" | grep -qx start && echo "$got" | grep -qx stop || fail "fish: llmctl st offered [$(echo $got)]"
want "fish: llmctl logs" "$(fq 'llmctl logs ')" adhoc alpha beta
want "fish: llmctl chat --ma" "$(fq 'llmctl chat --ma')" --max-tokens
echo "completion: ok"
