# Rebuilding a lost state file probes each server's health (up to 500 ms a server) before it
# takes the state lock, never under it: with 5 lost-row servers whose /health hangs for 2 s, a
# concurrent `llmctl state init` completes while the rebuild is still probing, and the rebuild
# then gives every server its row all the same (the file `state init` created meanwhile is not
# taken for a rebuilt one).
. "$TEST_LIB"
mock_config --range 9 'health = "tcp"'
for i in 0 1 2 3 4; do mock_model "w$i" --health-delay 2s; done
db="$LLMCTL_HOME/state.db"
for i in 0 1 2 3 4; do llmctl start "w$i" -q; done
pids=$(marked | sort)
[ "$(echo "$pids" | wc -l)" = 5 ] || fail "want 5 servers: $pids"
rm -f "$db" "$db-wal" "$db-shm"

# A connection to one of the servers' ports is open: the rebuild is probing (seen in
# /proc/net/tcp, not in anything llmctl says).
probing() {
  python3 - "$PORT_BASE" <<'PY'
import sys
lo = int(sys.argv[1])
for line in open("/proc/net/tcp").read().splitlines()[1:]:
    f = line.split()
    port, state = int(f[1].split(":")[1], 16), f[3]
    if lo <= port <= lo + 9 and state == "01":  # ESTABLISHED, the server's side
        sys.exit(0)
sys.exit(1)
PY
}
llmctl reap >"$T/reap.out" 2>"$T/reap.err" &
reaper=$!
wait_for 20 probing || fail "the rebuild never probed: $(cat "$T/reap.err")"
LLMCTL_LOCK_TIMEOUT=20s llmctl state init >/dev/null 2>"$T/init.err" || fail "state init failed: $(cat "$T/init.err")"
alive "$reaper" || fail "state init waited for the rebuild's health probes (the probes ran under the state lock)"
rc=0; wait "$reaper" || rc=$?
[ $rc = 0 ] || fail "reap exited $rc: $(cat "$T/reap.err")"
[ "$(grep -c '^rebuilt ' "$T/reap.out")" = 5 ] || fail "want 5 rebuilt rows: $(cat "$T/reap.out") $(cat "$T/reap.err")"
[ "$(marked | sort)" = "$pids" ] || fail "servers changed: $pids -> $(marked | sort)"
[ "$(ps_count)" = 5 ] || fail "ps after the rebuild: $(llmctl ps)"
expect_rc 0 llmctl stop --all
[ -z "$(marked)" ] || fail "stop --all left $(marked)"
echo "rebuild_probes: ok"
