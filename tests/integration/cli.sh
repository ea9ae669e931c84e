# The command surface of the foundation: version, help, did-you-mean, config errors, state dir.
. "$TEST_LIB"
expect_rc 0 llmctl --version
echo "$OUT" | grep -q '^llmctl [0-9]' || fail "version: $OUT"
expect_rc 0 llmctl --help
echo "$OUT" | grep -q config || fail "help lists no commands"
expect_rc 2 llmctl confg check
echo "$ERR" | grep -q 'did you mean "config"' || fail "no suggestion: $ERR"
expect_rc 2 llmctl config check --bogus

# Built-in config (no file at LLMCTL_CONFIG and none given).
LLMCTL_CONFIG= XDG_CONFIG_HOME="$T/none" expect_rc 0 llmctl config check
echo "$OUT" | grep -q '^echo: runs .*llmctl-mock-server' || fail "built-in echo missing: $OUT"
LLMCTL_CONFIG= XDG_CONFIG_HOME="$T/none" expect_rc 0 llmctl config show --json
echo "$OUT" | python3 -c 'import json,sys; j=json.load(sys.stdin); assert "echo" in j["models"]'

# A bad config: file:line:col, exit 3.
printf '[models.a]\ncommand = ["x"]\nprot = 5\n' >"$LLMCTL_CONFIG"
expect_rc 3 llmctl config check
echo "$ERR" | grep -q "$LLMCTL_CONFIG:3:1: unknown key \"prot\"" || fail "bad config message: $ERR"
echo "$ERR" | grep -q 'did you mean "port"' || fail "no suggestion: $ERR"
expect_rc 3 llmctl --config "$T/missing.toml" config check

# State dir: created 0700; refused when writable by others.
printf '[models.a]\ncommand = ["x"]\n' >"$LLMCTL_CONFIG"
expect_rc 0 llmctl state init
[ "$(stat -c %a "$LLMCTL_HOME")" = 700 ] || fail "state dir mode"
[ "$(stat -c %a "$LLMCTL_HOME/state.db")" = 600 ] || fail "state file mode"
chmod 777 "$LLMCTL_HOME"
expect_rc 1 llmctl state init
echo "$ERR" | grep -q 'chmod 700' || fail "no hint: $ERR"
chmod 700 "$LLMCTL_HOME"

# A state file that is not SQLite: clear error, exit 1, file untouched.
echo "garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage" >"$LLMCTL_HOME/state.db"
rm -f "$LLMCTL_HOME"/state.db-*
sum=$(sha256sum <"$LLMCTL_HOME/state.db")
expect_rc 1 llmctl state init
echo "$ERR" | grep -q 'not an SQLite database' || fail "corrupt message: $ERR"
[ "$(sha256sum <"$LLMCTL_HOME/state.db")" = "$sum" ] || fail "state file was modified"

# Every example config validates.
for f in "$(dirname "$TEST_LIB")"/../../examples/*.toml; do
  "$LLMCTL_BIN" --config "$f" config check >/dev/null || fail "example $f does not validate"
done

# Help that teaches: every command's --help has a summary and at least two examples; no
# escape codes anywhere in help or errors (output here is a pipe; NO_COLOR set or not).
for c in config start stop restart ps chat logs reap state; do
  expect_rc 0 llmctl "$c" --help
  [ "$(echo "$OUT" | sed -n '/^Examples:/,$p' | grep -c '^  .*llmctl ')" -ge 2 ] || fail "llmctl $c --help has fewer than 2 examples: $OUT"
  head -1 <<<"$OUT" | grep -E '^[A-Z][a-z]' >/dev/null || fail "llmctl $c --help has no summary line: $(echo "$OUT" | head -1)"
  echo "$OUT" | grep -q $'\x1b' && fail "escape code in llmctl $c --help"
done
expect_rc 0 llmctl --help
[ "$(echo "$OUT" | sed -n '/^Examples:/,$p' | grep -c '^  .*llmctl ')" -ge 2 ] || fail "llmctl --help has fewer than 2 examples"
echo "$OUT" | grep -q '^Usage: llmctl ' || fail "usage names the binary by its path, not llmctl: $(echo "$OUT" | grep Usage)"
# Did you mean: options, models (also for stop, which still succeeds), commands.
expect_rc 2 llmctl ps --jsn
[ "$ERR" = $'llmctl: error: unknown option --jsn for ps (did you mean "--json"?)\nhint: llmctl ps --help lists the options, with examples' ] || fail "mistyped option: $ERR"
expect_rc 2 llmctl --confg x ps
echo "$ERR" | grep -q 'did you mean "--config"' || fail "mistyped global option: $ERR"
cat >"$T/two.toml" <<EOT
[models.qwen-coder]
command = ["x"]
[models.phi4]
command = ["x"]
EOT
expect_rc 4 llmctl --config "$T/two.toml" chat qwen-codr hi
echo "$ERR" | grep -q 'did you mean "qwen-coder"' || fail "mistyped model in chat: $ERR"
expect_rc 4 llmctl --config "$T/two.toml" logs phi3
echo "$ERR" | grep -q 'did you mean "phi4"' || fail "mistyped model in logs: $ERR"
expect_rc 4 llmctl --config "$T/two.toml" --state-dir "$T/fresh" stop phi3
echo "$ERR" | grep -q 'unknown model "phi3" in .*two.toml (did you mean "phi4"?)' || fail "mistyped model in stop: $ERR"
expect_rc 4 llmctl --config "$T/two.toml" --state-dir "$T/fresh" stop phi4 phi3
[ -z "$(marked)" ] || fail "stop with a mistyped name did something"
expect_rc 0 llmctl --config "$T/two.toml" --state-dir "$T/fresh" stop phi4   # known, not running: success with a note
echo "$ERR" | grep -q 'phi4 is not running' || fail "stop of a known model that is not running: $ERR"
expect_rc 2 llmctl strat phi4
echo "$ERR" | grep -q 'did you mean "start"' || fail "mistyped command: $ERR"
for e in "$T/err" "$T/out"; do grep -q $'\x1b' "$e" && fail "escape code in $e"; done
echo "cli examples: ok"
