# Memory pools (llmctl.toml(5), MEMORY): eviction of the least recently used idle server, a start
# that waits while every server is busy (and cuts no chat), the measured footprint counting, and a
# start killed while it evicts leaves nothing behind after one reap.
. "$TEST_LIB"
events() { sqlite3 "$LLMCTL_HOME/state.db" "SELECT server || ' ' || kind FROM events ORDER BY id"; }
status_is() { [ "$(ps_field "$1" status)" = "$2" ]; }

# 1. A pool of 20 GiB, A, B, C of 9 GiB: after A, then B and a chat to B, a chat to C evicts A.
mock_config "pool = \"p\"" "[pools.p]" "memory = \"20GiB\""
for m in a b c; do
  mock_model $m --hold-until "$T/go"
  config_add "memory = \"9GiB\""
done
touch "$T/go"
llmctl start a -q >/dev/null
llmctl start b -q >/dev/null
expect_rc 0 llmctl chat b "to b"
a_pid=$(ps_field a pid)
expect_rc 0 llmctl start c --dry-run
echo "$OUT" | grep -q '^c would start after evicting 1 server(s): it needs 9.0 GiB (declared) of pool p, which has 18.0 GiB of 20.0 GiB in use$' ||
  fail "dry run: $OUT"
echo "$OUT" | grep -q '^  evict a (pid '"$a_pid"', 9.0 GiB, ' || fail "dry run names no victim: $OUT"
expect_rc 0 llmctl start c --dry-run --json
python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert j["action"] == "evict" and [v["name"] for v in j["victims"]] == ["a"], j' "$OUT" ||
  fail "dry run --json: $OUT"
[ "$(ps_field c status)" = "" ] || fail "the dry run started c"
expect_rc 0 llmctl chat c "to c"
[ "$OUT" = "to c" ] || fail "chat to c answered: $OUT"
echo "$ERR" | grep -q 'evicting a (9.0 GiB, least recently used) to fit c in pool p' || fail "no eviction note: $ERR"
! alive "$a_pid" || fail "a (pid $a_pid) still runs"
[ "$(ps_field a status)" = "" ] || fail "a still has a row: $(llmctl ps --json)"
events | grep -qx 'a evicted' || fail "no event evicted: $(events)"
expect_rc 0 llmctl ps
head -1 <<<"$OUT" | grep -q ' RSS  *MEM  *SLOTS ' || fail "no MEM column: $OUT"
echo "$OUT" | grep -q '^c .* 9GiB declared ' || fail "c's MEM: $OUT"
expect_rc 0 llmctl ps --pools --json
python3 -c 'import json,sys; [p]=json.loads(sys.argv[1]); assert p["name"] == "p" and p["used_bytes"] == 18 << 30 and p["budget_bytes"] == 20 << 30 and p["queued"] == 0, p' "$OUT" ||
  fail "ps --pools --json: $OUT"

# 2. B and C each stream a chat: a chat to A waits, saying who holds the memory, and starts A as
# soon as one of them ends; neither chat is cut.
rm "$T/go"
llmctl chat b "one two three" >"$T/b.out" 2>"$T/b.err" &
pb=$!
llmctl chat c "four five six" >"$T/c.out" 2>"$T/c.err" &
pc=$!
in_flight() { [ "$(ps_field b active)" = 1 ] && [ "$(ps_field c active)" = 1 ]; }
wait_for 20 in_flight || fail "the two chats never ran: $(llmctl ps --json)"
llmctl chat a "seven" >"$T/a.out" 2>"$T/a.err" &
pa=$!
waiting_said() { grep -q 'a needs 9.0 GiB in p (20.0 GiB): b (9.0 GiB) is serving 1 request, c (9.0 GiB) is serving 1 request; waiting' "$T/a.err"; }
wait_for 20 waiting_said || fail "no waiting message: $(cat "$T/a.err")"
queued() { llmctl ps --pools --json | python3 -c 'import json,sys; [p]=json.load(sys.stdin); sys.exit(p["queued"] != 1)'; }
wait_for 10 queued || fail "ps --pools shows no queued start: $(llmctl ps --pools)"
alive "$pa" || fail "the chat to a gave up"
[ "$(ps_field a status)" = "" ] || fail "a started while b and c were busy: $(llmctl ps)"
touch "$T/go"
wait "$pb" || fail "chat to b failed: $(cat "$T/b.err")"
wait "$pc" || fail "chat to c failed: $(cat "$T/c.err")"
wait "$pa" || fail "chat to a failed: $(cat "$T/a.err")"
[ "$(cat "$T/b.out")" = "one two three" ] || fail "b's reply was cut: $(cat "$T/b.out")"
[ "$(cat "$T/c.out")" = "four five six" ] || fail "c's reply was cut: $(cat "$T/c.out")"
[ "$(cat "$T/a.out")" = "seven" ] || fail "a's reply: $(cat "$T/a.out")"
[ "$(ps_count)" = 2 ] || fail "not two servers: $(llmctl ps)"
llmctl stop a b c -q

# 5. A mock declared at 1 GiB that holds 3 GiB: once ready it counts about 3 GiB (measured), and
# the next admission in a 4 GiB pool counts that.
mock_config "[pools.small]" "memory = \"4GiB\""
mock_model big --hold-memory 3GiB
config_add "memory = \"1GiB\"" "pool = \"small\""
mock_model other
config_add "memory = \"2GiB\"" "pool = \"small\""
llmctl start big -q >/dev/null
mem=$(ps_field big memory_bytes)
[ "$(ps_field big memory_source)" = measured ] || fail "big's memory is not measured: $(llmctl ps --json)"
[ "$mem" -ge $((3 << 30)) ] && [ "$mem" -lt $((3 << 30 + 256 << 20)) ] || fail "big measures $mem bytes"
expect_rc 0 llmctl ps
echo "$OUT" | grep -q '^big .* 3.[0-9]GiB measured ' || fail "ps MEM of big: $OUT"
expect_rc 0 llmctl start other --dry-run --json
python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert j["action"] == "evict" and j["used_bytes"] >= 3 << 30, j' "$OUT" ||
  fail "the admission does not count big's 3 GiB: $OUT"
llmctl stop big -q
# The footprint stays with the model and config: the next start of big counts 3 GiB from the start.
expect_rc 0 llmctl start big --dry-run --json
python3 -c 'import json,sys; j=json.loads(sys.argv[1]); assert j["need_source"] == "measured" and j["need_bytes"] >= 3 << 30, j' "$OUT" ||
  fail "big's measured footprint was forgotten: $OUT"

# A gpu pool: "auto" is the GPU's total and the measurement its processes' GPU memory, both from
# nvidia-smi (here a stand-in on PATH that answers as nvidia-smi does: 24 GiB, and 3 GiB for each
# process of this state dir's servers).
mkdir -p "$T/bin"
cat >"$T/bin/nvidia-smi" <<'EOS'
#!/bin/bash
case "$*" in
  *--query-gpu=memory.total*"-i 1") echo 24576 ;;
  *--query-compute-apps=pid,used_memory*"-i 1")
    for f in /proc/[0-9]*/environ; do
      if command grep -qzx "LLMCTL_HOME=$LLMCTL_HOME" "$f" 2>/dev/null && command grep -qz '^LLMCTL_INSTANCE=' "$f" 2>/dev/null; then
        p=${f#/proc/}; echo "${p%/environ}, 3072"
      fi
    done ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
EOS
chmod +x "$T/bin/nvidia-smi"
mock_config "[pools.gpu1]" "kind = \"gpu\"" "gpu = 1"
mock_model vram
config_add "memory = \"1GiB\"" "pool = \"gpu1\""
PATH="$T/bin:$PATH" expect_rc 0 llmctl start vram -q
[ "$(ps_field vram memory_source)" = measured ] && [ "$(ps_field vram memory_bytes)" = $((3 << 30)) ] ||
  fail "vram's GPU memory was not measured: $(llmctl ps --json)"
PATH="$T/bin:$PATH" expect_rc 0 llmctl ps --pools --json
python3 -c 'import json,sys; [p]=json.loads(sys.argv[1]); assert p["kind"] == "gpu" and p["budget_bytes"] == 24 << 30 and p["used_bytes"] == 3 << 30, p' "$OUT" ||
  fail "the gpu pool: $OUT"
llmctl stop vram -q

# 6. kill -9 of a start while it waits for its victim to exit: after one reap nothing is left
# admitting or stopping, nothing stays reserved, and the next start works.
mock_config "pool = \"p\"" "[pools.p]" "memory = \"10GiB\""
mock_model slow --ignore-sigterm
config_add "memory = \"9GiB\"" "stop_timeout = \"5s\""
mock_model next
config_add "memory = \"9GiB\""
llmctl start slow -q >/dev/null
slow_pid=$(ps_field slow pid)
"$LLMCTL_BIN" start next -q >"$T/next.out" 2>&1 &
starter=$!
wait_for 20 status_is next admitting || fail "next never admitting: $(llmctl ps --json)"
status_is slow stopping || fail "slow is not stopping: $(llmctl ps --json)"
kill -KILL "$starter"
wait "$starter" 2>/dev/null || true
alive "$slow_pid" || fail "slow exited on SIGTERM"
expect_rc 0 llmctl reap
! alive "$slow_pid" || fail "reap left slow (pid $slow_pid) running"
rows=$(sqlite3 "$LLMCTL_HOME/state.db" "SELECT count(*) FROM servers WHERE status IN ('admitting','stopping')")
[ "$rows" = 0 ] || fail "rows left admitting or stopping: $(llmctl ps -a --json)"
expect_rc 0 llmctl ps --pools --json
python3 -c 'import json,sys; [p]=json.loads(sys.argv[1]); assert p["used_bytes"] == 0 and p["reserved_bytes"] == 0 and p["queued"] == 0, p' "$OUT" ||
  fail "memory stays reserved: $OUT"
expect_rc 0 llmctl start next -q
llmctl stop next -q

# A stop of a start that is admitting (no process yet) ends that claim without damaging the state
# file (a stopping row must name a process: found by the soak), and the start decides again.
llmctl start slow -q >/dev/null
"$LLMCTL_BIN" start next -q >"$T/next.out" 2>&1 &
starter=$!
wait_for 20 status_is next admitting || fail "next never admitting: $(llmctl ps --json)"
# The stop is killed once it marked the row: what it leaves must be readable, and reap clears it.
LLMCTL_FAULT=crash-after:marked-stopping "$LLMCTL_BIN" stop next -q || true
expect_rc 0 llmctl ps --json
expect_rc 0 llmctl reap -q
wait "$starter" || fail "the start of next failed after a stop took its claim: $(cat "$T/next.out")"
status_is next running || fail "next is not running: $(llmctl ps --json)"
llmctl stop next -q

# A start that evicted, then cannot spawn (its fixed port is taken), lets go of its claim: no
# admitting row stays behind (a serve, whose identity lives on, would hold the memory for good).
mock_config "pool = \"p\"" "[pools.p]" "memory = \"10GiB\""
mock_model filler
config_add "memory = \"9GiB\""
mock_model pinned_port
config_add "memory = \"9GiB\"" "port = $((PORT_BASE + 40))"
llmctl start filler -q >/dev/null
hold_port $((PORT_BASE + 40))
expect_rc 5 llmctl start pinned_port
echo "$ERR" | grep -q "port $((PORT_BASE + 40)) on 127.0.0.1 is in use" || fail "the failed spawn: $ERR"
left=$(sqlite3 "$LLMCTL_HOME/state.db" "SELECT count(*) FROM servers WHERE status='admitting'")
[ "$left" = 0 ] || fail "a failed start left its admitting row: $(llmctl ps --json)"
[ "$(sqlite3 "$LLMCTL_HOME/state.db" "SELECT count(*) FROM admissions")" = 0 ] || fail "a failed start left a queue place"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true
llmctl stop --all -q

# kill -9 of a start waiting in the pool's queue (next holds a chat): reap drops its place.
rm -f "$T/go"
mock_config "pool = \"p\"" "[pools.p]" "memory = \"10GiB\""
mock_model next --hold-until "$T/go"
config_add "memory = \"9GiB\""
mock_model third
config_add "memory = \"9GiB\""
llmctl chat next "busy for now" >"$T/next.out" 2>&1 &
chatter=$!
active_is() { [ "$(ps_field "$1" active)" = "$2" ]; }
wait_for 20 active_is next 1 || fail "the chat to next never ran"
"$LLMCTL_BIN" start third -q >"$T/third.out" 2>&1 &
starter=$!
wait_for 20 queued || fail "third never queued: $(llmctl ps --pools)"
kill -KILL "$starter"
wait "$starter" 2>/dev/null || true
expect_rc 0 llmctl reap --json
python3 -c 'import json,sys; a=[x for x in json.loads(sys.argv[1]) if x["action"] == "admission_cleared"]; assert len(a) == 1 and a[0]["name"] == "third", a' "$OUT" ||
  fail "reap did not drop the dead start's place: $OUT"
expect_rc 0 llmctl ps --pools --json
python3 -c 'import json,sys; [p]=json.loads(sys.argv[1]); assert p["queued"] == 0, p' "$OUT" || fail "a place stays queued: $OUT"
touch "$T/go"
wait "$chatter" || fail "the chat to next failed: $(cat "$T/next.out")"
llmctl stop next -q

# config check reads the GGUF file of a model whose memory is "auto": a missing one is named with
# the line of the model (exit 3), before any start.
mock_config "pool = \"p\"" "[pools.p]" "memory = \"10GiB\""
config_add "[models.lost]" "command = [\"llama-server\", \"-m\", \"$T/missing.gguf\"]"
expect_rc 3 llmctl config check
echo "$ERR" | grep -q "config.toml:6:9: model \"lost\": memory = \"auto\": cannot read the model file $T/missing.gguf" ||
  fail "config check of a missing GGUF: $ERR"
echo "memory_pools: ok"
