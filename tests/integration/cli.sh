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
echo "cli examples: ok"
