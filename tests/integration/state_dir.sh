# The state dir is one canonical path, whatever its spelling: two projects using the same
# relative LLMCTL_HOME are two state dirs (neither reaps, takes over or stops the other's
# server), a state dir reached through a symlink works and is the same as its target, a trailing
# slash is the same dir (a lost state file is rebuilt, not duplicated), and a marker that is not
# a canonical path is never taken as ours.
. "$TEST_LIB"
mock_config 'stop_timeout = "5s"'
mock_model m
# Observer: live server processes (LLMCTL_INSTANCE marker) whose LLMCTL_HOME is exactly $1.
servers_in() { marked_matching -x "LLMCTL_HOME=$1"; }
count() { echo $#; }
on_cleanup() {
  local d
  for d in "$T/a/.llmctl" "$T/b/.llmctl" "$T/disk/state" "$T/c"; do "$LLMCTL_BIN" --state-dir "$d" stop --all -q >/dev/null 2>&1 || true; done
}

# 1. Two projects, one relative spelling (direnv's LLMCTL_HOME=.llmctl in each).
mkdir -p "$T/a" "$T/b"
a_pid=$(cd "$T/a" && LLMCTL_HOME=.llmctl "$LLMCTL_BIN" start m --json | json_get pid)
[ "$(servers_in "$T/a/.llmctl")" = "$a_pid" ] || fail "project a's server does not carry its canonical state dir: $(servers_in "$T/a/.llmctl")"
(cd "$T/b" && LLMCTL_HOME=.llmctl "$LLMCTL_BIN" reap) >"$T/reap.out" 2>&1 || fail "reap in b failed: $(cat "$T/reap.out")"
[ ! -s "$T/reap.out" ] || fail "reap in project b acted on project a: $(cat "$T/reap.out")"
alive "$a_pid" || fail "reap in project b killed project a's server"
b_pid=$(cd "$T/b" && "$LLMCTL_BIN" --state-dir .llmctl start m --json | json_get pid)
[ "$b_pid" != "$a_pid" ] || fail "start in project b took over project a's server"
(cd "$T/b" && LLMCTL_HOME=.llmctl "$LLMCTL_BIN" stop m -q) || fail "stop in b failed"
alive "$a_pid" || fail "stop in project b stopped project a's server"
! alive "$b_pid" || fail "stop in project b left its own server"
[ "$(count $(servers_in "$T/a/.llmctl"))" = 1 ] || fail "project a: $(servers_in "$T/a/.llmctl")"
(cd "$T/a" && LLMCTL_HOME=./.llmctl/ "$LLMCTL_BIN" stop m -q) || fail "stop in a (spelled ./.llmctl/) failed"
! alive "$a_pid" || fail "stop in a by another spelling left its server"

# 2. A state dir reached through a symlink (~/.local/state moved to another disk).
mkdir -p "$T/disk"
ln -s "$T/disk" "$T/link"
expect_rc 0 env LLMCTL_HOME="$T/link/state" "$LLMCTL_BIN" start m
url=$OUT
[ "$(LLMCTL_HOME="$T/link/state" "$LLMCTL_BIN" state path)" = "$T/disk/state" ] || fail "state path is not canonical"
expect_rc 0 env LLMCTL_HOME="$T/disk/state/" "$LLMCTL_BIN" start m --json
echo "$OUT" | grep -q '"already_running":true' || fail "the symlink's target is another state dir: $OUT"
echo "$OUT" | grep -qF "\"url\":\"$url\"" || fail "another URL through the target: $OUT"
expect_rc 0 env LLMCTL_HOME="$T/link/../disk/state" "$LLMCTL_BIN" stop m
[ -z "$(servers_in "$T/disk/state")" ] || fail "stop through another spelling left the server"

# 3. Trailing slash and a lost state file: rebuilt from the markers, never a second server.
expect_rc 0 env LLMCTL_HOME="$T/c/" "$LLMCTL_BIN" start m --json
c_pid=$(echo "$OUT" | json_get pid)
rm -f "$T/c/state.db" "$T/c/state.db-wal" "$T/c/state.db-shm"
expect_rc 0 env LLMCTL_HOME="$T/c" "$LLMCTL_BIN" start m --json
echo "$OUT" | grep -q "\"pid\":$c_pid" || fail "a second server started after the file was lost: $OUT"
[ "$(servers_in "$T/c")" = "$c_pid" ] || fail "servers of $T/c: $(servers_in "$T/c")"

# 4. A marker that is not a canonical path (as typed by an older llmctl, or by hand) is never ours.
(cd "$T/c" && exec env LLMCTL_HOME="$T/c/" LLMCTL_INSTANCE=deadbeef LLMCTL_NAME=m sleep 300) &
slash=$!
(cd "$T" && exec env LLMCTL_HOME=c LLMCTL_INSTANCE=feedface LLMCTL_NAME=m sleep 300) &
rel=$!
wait_for 5 grep -qz LLMCTL_INSTANCE=feedface "/proc/$rel/environ" || fail "the stand-in did not start"
wait_for 5 grep -qz LLMCTL_INSTANCE=deadbeef "/proc/$slash/environ" || fail "the stand-in did not start"
expect_rc 0 env LLMCTL_HOME="$T/c" "$LLMCTL_BIN" reap
[ -z "$OUT" ] || fail "reap acted on a process whose marker is not this canonical state dir: $OUT"
alive "$slash" && alive "$rel" || fail "reap killed a stranger"
expect_rc 0 env LLMCTL_HOME="$T/c" "$LLMCTL_BIN" stop m
alive "$slash" && alive "$rel" || fail "stop killed a stranger"
! alive "$c_pid" || fail "stop left the server"
kill "$slash" "$rel"
echo "state_dir: ok"
