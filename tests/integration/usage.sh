# The command line, issue 16: only `--` introduces an ad-hoc command (a stray word is a usage
# error that starts nothing), words after `--` go only where they belong, conflicting options
# are usage errors naming both, a mistyped global option gets a "did you mean", and every kind
# of CLI11 parse error reaches the user in llmctl's voice ("llmctl: error: …" naming the
# command and the word, then "hint: …"), never in CLI11's.
. "$TEST_LIB"
mock_config
mock_model m
# CLI11's own phrases, which must never reach the user.
cli11_voice='not expected|is required|Could not convert|not in range|Expected (exactly|at least)|required but received|excludes|requires|At Most|Should be true|subcommand is required|allowed value'
# usage RC 'EXACT FIRST LINE' ARGS...: the exit code, the error line word for word, a hint line,
# nothing of CLI11's voice, nothing on stdout, nothing started and no state dir created
# (unless a server already runs).
usage() {
  local want=$1 line=$2; shift 2
  expect_rc "$want" llmctl "$@"
  [ "$(head -1 <<<"$ERR")" = "llmctl: error: $line" ] || fail "'llmctl $*': first line is [$(head -1 <<<"$ERR")], want [llmctl: error: $line]"
  sed -n 2p <<<"$ERR" | grep -q '^hint: ' || fail "'llmctl $*': no hint line: $ERR"
  [ "$(wc -l <<<"$ERR")" -eq 2 ] || fail "'llmctl $*': more than an error and a hint: $ERR"
  ! grep -qE "$cli11_voice" <<<"$ERR" || fail "'llmctl $*': CLI11's voice: $ERR"
  [ -z "$OUT" ] || fail "'llmctl $*' printed on stdout: $OUT"
  [ -n "${running:-}" ] || [ ! -e "$LLMCTL_HOME" ] || fail "'llmctl $*' created the state dir"
  [ "$(marked | sort)" = "${running:-}" ] || fail "'llmctl $*' started something: $(marked)"
}

# 1. A stray word never becomes a server command.
usage 2 'start: unexpected argument "30s"' start m 30s
grep -q 'hint: a command to run goes after --, as in llmctl start NAME -- 30s' <<<"$ERR" || fail "start m 30s: hint: $ERR"
usage 2 'start: unexpected argument "sleep"' start m sleep 30
usage 2 'start: unexpected argument "sleep"' start adhoc sleep 30
usage 2 'start: no command after --' start m --
usage 125 'exec: unexpected argument "sleep"' exec m sleep 1
usage 125 'exec: unexpected argument "extra"' exec m extra -- true
usage 125 'exec needs a NAME' exec
usage 125 'unknown option --bogus for exec' exec m --bogus -- true
usage 2 'ps takes no arguments after --, got "x"' ps -- x
usage 2 'stop takes no arguments after --, got "m"' stop -- m
usage 2 'config show takes no arguments after --, got "x"' config show -- x
usage 2 'restart: unexpected argument "x"' restart m x
# A running m: `start m extra-word` is still an error, not its URL.
expect_rc 0 llmctl start m
url=$OUT
running=$(marked | sort)
[ -n "$running" ] || fail "m is not running"
usage 2 'start: unexpected argument "extra-word"' start m extra-word
# What `--` is for still works: an ad-hoc server (options before `--`, the command's own
# options after it), exec's CMD, and chat's prompt words that start with '-'.
expect_rc 0 llmctl start adhoc --json -- "$MOCK_BIN" --port {port}
[ "$(json_get name <<<"$OUT")" = adhoc ] && [[ "$(json_get url <<<"$OUT")" == http://* ]] || fail "start adhoc --json -- CMD: $OUT"
expect_rc 0 llmctl stop adhoc
expect_rc 0 llmctl exec m -- sh -c 'echo "$LLMCTL_URL"'
[ "$OUT" = "$url" ] || fail "exec m -- sh -c: printed [$OUT], want $url"
expect_rc 7 llmctl exec m -- sh -c 'exit 7'
expect_rc 0 llmctl chat m -- -x --json
[ "$OUT" = "-x --json" ] || fail "chat m -- -x --json: the answer is [$OUT], want the prompt \"-x --json\""
expect_rc 0 llmctl chat m two -- -words
[ "$OUT" = "two -words" ] || fail "chat m two -- -words: the answer is [$OUT]"
# --help still teaches `-- CMD ARGS...`.
expect_rc 0 llmctl start --help
grep -q '^Usage: llmctl start \[OPTIONS\] name \[-- CMD \[ARGS...\]\]$' <<<"$OUT" || fail "start --help usage: $(grep Usage <<<"$OUT")"
grep -q 'llmctl start web --health / -- ' <<<"$OUT" || fail "start --help has no -- example"
expect_rc 0 llmctl exec --help
grep -q '^Usage: llmctl exec \[OPTIONS\] name -- CMD \[ARGS...\]$' <<<"$OUT" || fail "exec --help usage: $(grep Usage <<<"$OUT")"
expect_rc 0 llmctl chat --help
grep -q '^Usage: llmctl chat \[OPTIONS\] name \[prompt...\] \[-- PROMPT...\]$' <<<"$OUT" || fail "chat --help usage: $(grep Usage <<<"$OUT")"

# 2a. Options that exclude each other: a usage error naming both, in the order typed.
usage 2 'ps: --json and --quiet do not go together' ps --json -q
usage 2 'ps: --quiet and --json do not go together' ps -q --json
usage 2 'ps: --health and --quiet do not go together' ps --health --quiet
usage 2 'config show: --names and --json do not go together' config show --names --json
usage 2 'reap: --rebuild and --dry-run do not go together' reap --rebuild -n
usage 2 'start: --no-wait and --timeout do not go together' start m --no-wait --timeout 5s
usage 2 'ps: --verbose and --quiet do not go together' -v -q ps
usage 2 'config check: --verbose and --quiet do not go together' config check --verbose --quiet   # globals after the command
expect_rc 0 llmctl ps --json --health   # not a conflict: JSON with health fields
expect_rc 0 llmctl -q ps -q             # the global -q and ps's own -q

# 2b. A mistyped global option: "did you mean", never "A subcommand is required".
usage 2 'unknown option --versoin (did you mean "--version"?)' --versoin
usage 2 'unknown option --hepl (did you mean "--help"?)' --hepl
usage 2 'unknown option --state-dri (did you mean "--state-dir"?)' --state-dri x ps
usage 2 'unknown option --verbos (did you mean "--verbose"?)' ps --verbos   # a global option: for no command
usage 2 'unknown option --jsn for config show (did you mean "--json"?)' config show --jsn
usage 2 'unknown command "strat" (did you mean "start"?)' -v strat m
usage 2 'unknown command "strat" (did you mean "start"?)' strat --help
usage 2 'unknown config subcommand "chek" (did you mean "check"?)' config chek

# 2c. Each class of CLI11 parse error, reworded.
usage 2 'no command given' # RequiredError (a subcommand) at the top
usage 2 'state needs a subcommand: init or path' state
usage 2 'start needs a NAME' start  # RequiredError (a positional)
usage 2 'ps: unexpected argument "extra"' ps extra   # ExtrasError
usage 2 'config check: unexpected argument "extra"' config check extra
usage 2 'start: --port must be from 1 to 65535, not 0' start m --port 0   # ValidationError
usage 2 'start: --port takes a whole number, not "x"' start m --port x
usage 2 'start: --port takes a whole number, not "80.5"' start m --port 80.5
usage 2 'chat: --max-tokens takes a whole number, not "x"' chat m --max-tokens x hi
usage 2 'chat: --temperature takes a number, not "warm"' chat m --temperature warm hi
usage 2 'chat: --seed takes a whole number, not "x"' chat m --seed x hi
usage 2 'start: --port needs a value' start m --port   # ArgumentMismatch
usage 2 'chat: --system needs a value' chat m hi -s
usage 2 'start: --port is given more than once' start m --port 1 --port 2
usage 2 'ps: --json is a flag: it takes no value' ps --json=maybe   # ConversionError
usage 2 'start: --timeout and --no-wait do not go together' start m --timeout 1s --no-wait   # ExcludesError
echo "usage: ok"
