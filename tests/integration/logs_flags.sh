# Conflicting options of logs are usage errors (exit 2) naming both flags, refused before
# anything is done (no rotation, nothing printed on stdout).
. "$TEST_LIB"
mock_config --range 9
logs=$LLMCTL_HOME/logs
mkdir -p "$logs"
seq 1 10 >"$logs/s.log"
refused() { # FLAG1 FLAG2 ARGS...: logs ARGS exits 2 naming both flags, having done nothing
  local a=$1 b=$2; shift 2
  expect_rc 2 llmctl logs "$@"
  echo "$ERR" | grep -q -- "^llmctl: error: .*$a.*$b" || fail "logs $*: the message does not name $a and $b: $ERR"
  [ -z "$OUT" ] || fail "logs $*: printed $OUT"
  [ ! -e "$logs/s.log.1" ] || fail "logs $*: rotated anyway"
}
refused --path --lines --path -n 5 s
refused --path --lines --path --lines=0 s
refused --path --follow --path -f s
refused --path --rotate --path --rotate s
refused --path --rotate --rotate --path s
refused --rotate --lines --rotate -n 3 s
refused --rotate --follow -f --rotate s
refused --all --path --all --path
refused --all --rotate --all --rotate
# What goes together still works.
expect_rc 0 llmctl logs -n 2 s
[ "$OUT" = "$(printf '9\n10')" ] || fail "logs -n 2 s: $OUT"
expect_rc 0 llmctl logs --all -n 1
expect_rc 0 llmctl logs --rotate s -q
echo "logs_flags: ok"
