# chat's inputs and piped output: text that is not UTF-8 (a prompt from arguments or stdin,
# --system, --stop, a stored session) is sent with U+FFFD and one warning naming the input and
# the offset of its first bad byte; a blank prompt is exit 2 however it is given, before any
# server starts; --session "" is exit 2; piped output is the model's bytes, escape codes included.
. "$TEST_LIB"
mock_config
mock_model echo
mock_model history --echo-history
mock_model esc --reply 'title\u001b]0;pwned\u0007 clear\u001b[2J csi\u009b31m cr\rend'
fffd=$'\xef\xbf\xbd'

# 1. A Latin-1 prompt on stdin, as `git diff | llmctl chat m` sends for a Latin-1 file.
printf 'diff: caf\xe9 au lait\n' >"$T/latin1"
expect_rc 0 llmctl chat echo <"$T/latin1"
[ "$OUT" = "diff: caf${fffd} au lait" ] || fail "latin-1 stdin answered: $(echo "$OUT" | od -c | head -3)"
echo "$ERR" | grep -q '^llmctl: warning: the prompt on stdin is not valid UTF-8 (first bad byte at offset 9)' || fail "stdin warning: $ERR"
echo "$ERR" | grep -q '^hint: .*iconv' || fail "no hint: $ERR"
[ "$(echo "$ERR" | grep -c warning)" = 1 ] || fail "one warning per input: $ERR"
echo "$ERR" | grep -qi 'json\|exception' && fail "a library exception leaked: $ERR"

# 2. The same from arguments, --system and --stop; each warning names its input.
expect_rc 0 llmctl chat echo "ok $(printf 'x\xff\xfey')"
[ "$OUT" = "ok x${fffd}${fffd}y" ] || fail "argument prompt answered: $OUT"
echo "$ERR" | grep -q 'the prompt is not valid UTF-8 (first bad byte at offset 4)' || fail "argument warning: $ERR"
expect_rc 0 llmctl chat echo "fine" -s "$(printf 'sys \xc3')" --stop "$(printf '\xe2\x82')"
[ "$OUT" = "fine" ] || fail "--system/--stop chat answered: $OUT"
echo "$ERR" | grep -q -- '--system is not valid UTF-8 (first bad byte at offset 4)' || fail "--system warning: $ERR"
echo "$ERR" | grep -q -- '--stop is not valid UTF-8 (first bad byte at offset 0)' || fail "--stop warning: $ERR"

# 3. A stored session holding bytes that are not UTF-8 (edited by hand): sent along, replaced.
expect_rc 0 llmctl chat history --session s "first"
python3 - "$LLMCTL_HOME/state.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE messages SET content = CAST(X'6669727374FF' AS TEXT) WHERE session='s' AND role='user'")
c.commit()
PY
expect_rc 0 llmctl chat history --session s "second"
[ "$OUT" = "first${fffd} | second" ] || fail "session with a bad byte answered: $OUT"
echo "$ERR" | grep -q 'message 1 of session "s" is not valid UTF-8 (first bad byte at offset 5)' || fail "session warning: $ERR"

# 4. A blank prompt is exit 2 from arguments and from stdin alike, before any server starts.
llmctl stop --all -q
for p in "" "   " $'\t\n'; do
  expect_rc 2 llmctl chat echo "$p"
  echo "$ERR" | grep -q '^llmctl: error: the prompt is empty' || fail "blank argument prompt: $ERR"
  echo "$ERR" | grep -q '^hint: give the prompt' || fail "blank prompt hint: $ERR"
done
for p in "" "\n\n" "  \n \n"; do
  printf "$p" >"$T/blank"
  expect_rc 2 llmctl chat echo <"$T/blank"
  echo "$ERR" | grep -q '^llmctl: error: the prompt on stdin is empty' || fail "blank stdin prompt: $ERR"
done
expect_rc 0 llmctl ps --json
[ "$OUT" = "[]" ] || fail "a blank prompt started a server: $OUT"

# 5. --session "" is a usage error, not an unnamed session.
expect_rc 2 llmctl chat echo --session "" hi
echo "$ERR" | grep -q -- '--session needs a name' || fail "--session \"\": $ERR"

# 6. Piped, the answer is the model's bytes exactly (escape codes are neutralised only on a
#    terminal); a newline is added because the answer does not end with one.
llmctl chat esc hi >"$T/esc.out" 2>"$T/esc.err" || fail "esc chat failed: $(cat "$T/esc.err")"
printf 'title\033]0;pwned\007 clear\033[2J csi\302\23331m cr\rend\n' >"$T/esc.want"
cmp "$T/esc.out" "$T/esc.want" || fail "piped output changed: $(od -c "$T/esc.out" | head -5)"
llmctl chat esc --json hi >"$T/esc.json"
python3 - "$T/esc.json" <<'PY' || fail "--json content: $(cat "$T/esc.json")"
import json, sys
assert json.load(open(sys.argv[1]))["content"] == "title\x1b]0;pwned\x07 clear\x1b[2J csi\x9b31m cr\rend"
PY
echo "chat_input: ok"
