# Probes (issue 20): a wedged mock (health answers, completions never do) with probe =
# "completion" is found wedged and restarted within probe_every + probe_timeout and a few
# seconds; a chat that was waiting for its slot (max_concurrent = 1) completes on the new server.
# A health probe finds a server whose health hangs; restart = "no" leaves a wedged one running.
# A busy server whose slot holder hears tokens is not wedged. The prober is the monitor's child,
# carries no marker and goes with the server.
. "$TEST_LIB"
events_of() { sqlite3 "$LLMCTL_HOME/state.db" "SELECT kind || ': ' || detail FROM events WHERE server='$1' ORDER BY id"; }
mock_config
mock_model w --wedge-once "$T/wedge"
config_add 'probe = "completion"' 'probe_every = "1s"' 'probe_timeout = "2s"' 'restart = "on-failure"' 'restart_delay = "200ms"'
mock_model h --health-delay 5s
config_add 'probe = "health"' 'probe_every = "500ms"' 'probe_timeout = "1s"' 'health = "tcp"' 'restart = "on-failure"' 'restart_delay = "200ms"'
mock_model stuck --wedge
config_add 'probe = "completion"' 'probe_every = "500ms"' 'probe_timeout = "1s"'
mock_model busy --reply-tokens 40 --tokens-per-second 10
config_add 'probe = "completion"' 'probe_every = "500ms"' 'probe_timeout = "1s"' 'restart = "on-failure"'

# 1. The wedged w: a chat holds its only slot and gets nothing, a second chat waits for it.
touch "$T/wedge"
llmctl start w -q >/dev/null
wpid=$(ps_field w pid)
mon=$(ps_field w monitor_pid)
prober=$(pgrep -P "$mon" -f ' probe w ' || true)
[ -n "$prober" ] || fail "no prober under the monitor $mon: $(ps -o pid,args --ppid "$mon")"
! tr '\0' '\n' </proc/"$prober"/environ | grep -q '^LLMCTL_INSTANCE=' || fail "the prober carries a marker"
[ "$(count_marked)" = 1 ] || fail "marked processes: $(marked)"
started=$(date +%s%N)
llmctl chat w "first" >"$T/a.out" 2>"$T/a.err" &
a=$!
holding() { [ "$(sqlite3 "$LLMCTL_HOME/state.db" "SELECT COUNT(*) FROM leases WHERE model='w' AND state='active'")" = 1 ]; }
wait_for 10 holding || fail "the first chat never took the slot"
llmctl chat w "second" >"$T/b.out" 2>"$T/b.err" &
b=$!
restarted() { [ "$(ps_field w status)" = running ] && [ "$(ps_field w pid)" != "$wpid" ]; }
wait_for 10 restarted || fail "w was not restarted: $(llmctl ps -a); $(events_of w)"
took=$(( ($(date +%s%N) - started) / 1000000 ))
echo "wedged w restarted ${took} ms after the chats began (probe_every 1s, probe_timeout 2s, two no-slot verdicts)"
[ "$took" -le 9000 ] || fail "restarted after $took ms"
wait "$b" || fail "the waiting chat failed: $(cat "$T/b.err")"
grep -qx second "$T/b.out" || fail "the waiting chat's answer: $(cat "$T/b.out")"
wait "$a" || true # (cut when the wedged server went, or retried on the new one)
events_of w | grep -q '^wedged: pid '"$wpid"': no slot within 2s while its holder received nothing; stopping it' || fail "events: $(events_of w)"
[ "$(ps_field w restarts)" = 1 ] || fail "restarts: $(llmctl ps --json)"
llmctl ps -a --json | grep -q '"cause": ".* after its probe found it wedged: ' || fail "the exit's cause: $(llmctl ps -a --json)"
! alive "$prober" || fail "the old server's prober (pid $prober) still runs"
# Probes never refresh last_used.
used=$(ps_field w last_used)
sleep 2.5 # two probes
[ "$(ps_field w last_used)" = "$used" ] || fail "a probe refreshed last_used"
expect_rc 0 llmctl stop w
[ "$(count_marked)" = 0 ] || fail "left behind: $(marked)"

# 2. A health probe: h's health hangs (tcp readiness lets it start), so the probe finds it wedged.
llmctl start h -q >/dev/null
hpid=$(ps_field h pid)
wait_for 10 sh -c "sqlite3 '$LLMCTL_HOME/state.db' \"SELECT 1 FROM events WHERE server='h' AND kind='wedged'\" | grep -q 1" ||
  fail "h was never found wedged: $(events_of h)"
events_of h | grep -q "^wedged: pid $hpid: GET /health" || fail "events: $(events_of h)"
expect_rc 0 llmctl stop h

# 3. restart = "no": found wedged once, left running.
llmctl start stuck -q >/dev/null
spid=$(ps_field stuck pid)
wait_for 10 sh -c "sqlite3 '$LLMCTL_HOME/state.db' \"SELECT 1 FROM events WHERE server='stuck' AND kind='wedged'\" | grep -q 1" ||
  fail "stuck was never found wedged: $(events_of stuck)"
sleep 1.5 # more probes: reported once
[ "$(ps_field stuck pid)" = "$spid" ] || fail "restart = \"no\" stopped it: $(llmctl ps)"
[ "$(events_of stuck | grep -c '^wedged')" = 1 ] || fail "reported more than once: $(events_of stuck)"
events_of stuck | grep -q 'left running (restart = "no")' || fail "events: $(events_of stuck)"
expect_rc 0 llmctl stop stuck

# 4. A busy server is not wedged: a 4 s stream holds busy's only slot, the probes get none, but
# its holder hears tokens (progress_at), so nothing is stopped.
llmctl start busy -q >/dev/null
bpid=$(ps_field busy pid)
expect_rc 0 llmctl chat busy "long"
echo "$OUT" | grep -q tok39 || fail "the long chat: $OUT"
[ "$(ps_field busy pid)" = "$bpid" ] && [ -z "$(events_of busy | grep '^wedged')" ] || fail "a busy server was taken for wedged: $(events_of busy)"
expect_rc 0 llmctl stop busy
[ "$(count_marked)" = 0 ] || fail "left behind: $(marked)"
echo ok
