# logs works while the config has a syntax error (someone is editing it): reading, following,
# --all and --path work from the files, with a warning naming the config error; --rotate uses
# the built-in log_keep and says so. Unknown names are still exit 4.
. "$TEST_LIB"
cat >"$LLMCTL_CONFIG" <<EOT
[defaults]
port_range = [$PORT_BASE, $((PORT_BASE + 9))]
log_keep = 1
[models.m
command = ["true"]
EOT
logs=$LLMCTL_HOME/logs
mkdir -p "$logs"
seq 1 100 >"$logs/s.log"
expect_warning() { # WHAT: the config error was named on stderr
  echo "$ERR" | grep -q "^llmctl: warning: the config cannot be used (.*config.toml:4" || fail "$1: no warning naming the config error: $ERR"
}
expect_rc 0 llmctl logs s
[ "$OUT" = "$(seq 51 100)" ] || fail "logs s: $OUT"
expect_warning "logs s"
expect_rc 0 llmctl logs -n 2 s
[ "$OUT" = "$(printf '99\n100')" ] || fail "logs -n 2 s: $OUT"
expect_rc 0 llmctl logs --all -n 1
[ "$OUT" = "s | 100" ] || fail "logs --all -n 1: $OUT"
expect_rc 0 llmctl logs --path s
[ "$OUT" = "$logs/s.log" ] || fail "logs --path s: $OUT"
expect_rc 4 llmctl logs nosuch
expect_warning "logs nosuch"
"$LLMCTL_BIN" logs -f -n 1 s >"$T/followed" 2>"$T/follow.err" &   # not the function: $! must be llmctl
follower=$!
wait_for 10 grep -qx 100 "$T/followed" || fail "logs -f printed no tail: $(cat "$T/follow.err")"
echo 101 >>"$logs/s.log"
wait_for 10 grep -qx 101 "$T/followed" || fail "logs -f did not follow: $(cat "$T/follow.err")"
kill -INT "$follower"
rc=0; wait "$follower" || rc=$?
[ $rc -eq 130 ] || fail "logs -f exited $rc on SIGINT, want 130"
# --rotate: the built-in log_keep (3), not the broken file's 1, and it says so.
for i in 1 2 3 4; do
  seq -f "rotation $i, line %g" 300 >>"$logs/s.log" # more than a block: a smaller log is left as it is
  expect_rc 0 llmctl logs --rotate s
done
echo "$ERR" | grep -q 'built-in log_keep = 3' || fail "logs --rotate does not say it uses the built-in log_keep: $ERR"
[ -e "$logs/s.log.3" ] && [ ! -e "$logs/s.log.4" ] || fail "logs --rotate kept $(ls "$logs") with the built-in log_keep 3"
echo "logs_broken_config: ok"
