# A hosted provider's in-flight cap, leak-proof (issue 21, field note 003): an https model with
# max_concurrent = 2, ten requests at once through two `serve` processes and CLI chats, two of
# the clients killed with SIGKILL mid-stream. The provider (the TLS mock's request log, not
# llmctl's bookkeeping) never has more than 2 requests in flight, every other client gets its
# whole answer, and no lease is left after one reap.
. "$TEST_LIB"
pki=$T/pki
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$pki/srv.key" -out "$pki/srv.pem" -days 2 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null || fail "openssl could not make a certificate"
p=$((PORT_BASE + 30))
"$MOCK_BIN" --port $p --tls-cert "$pki/srv.pem" --tls-key "$pki/srv.key" --model-name prov --tokens-per-second 20 \
  --reply-tokens 40 --request-log "$T/provider.requests" >"$T/provider.log" 2>&1 &
wait_for 10 grep -q "listening on https://" "$T/provider.log" || fail "the TLS mock never listened: $(cat "$T/provider.log")"
mock_config
config_add <<EOF
[models.prov]
url = "https://localhost:$p"
ca_file = "$pki/srv.pem"
max_concurrent = 2
EOF
full="$(seq -s ' ' -f 'tok%g' 0 39)"
start_serve $((p + 1))
serve_a=$SERVE_URL
start_serve $((p + 2))
serve_b=$SERVE_URL

# 4 streams through serve A, 3 through serve B, 3 CLI chats: 10 at once.
i=0
for url in "$serve_a" "$serve_a" "$serve_a" "$serve_a" "$serve_b" "$serve_b" "$serve_b"; do
  i=$((i + 1))
  curl -sN --max-time 60 "$url/v1/chat/completions" -d "$(chat_body prov "stream $i" true)" >"$T/stream.$i" &
  eval "stream$i=\$!"
done
for i in 1 2 3; do
  "$LLMCTL_BIN" chat prov "chat $i" >"$T/chat.$i" 2>"$T/chat.$i.err" &
  eval "chat$i=\$!"
done
# Two clients die mid-stream: a serve client and a CLI chat, each once its answer flows (an
# answer takes 2 s).
killed=""
kill_flowing() { # NAME PID FILE: kills PID once FILE has the first of its answer, while it runs
  if [[ " $killed " != *" $1 "* ]] && [ -s "$3" ]; then
    alive "$2" || fail "$1 ended before it could be killed mid-stream: $(cat "$3")"
    kill -KILL "$2"
    killed="$killed $1"
  fi
}
both_killed() {
  kill_flowing stream1 $stream1 "$T/stream.1"
  kill_flowing chat1 $chat1 "$T/chat.1"
  [ "$killed" = " stream1 chat1" ] || [ "$killed" = " chat1 stream1" ]
}
wait_for 60 both_killed || fail "killed only:$killed"
for i in 2 3 4 5 6 7; do
  rc=0; eval "wait \$stream$i" || rc=$?
  [ $rc = 0 ] && [ "$(sse_text <"$T/stream.$i")" = "$full" ] || fail "stream $i (rc $rc): $(cat "$T/stream.$i")"
done
for i in 2 3; do
  rc=0; eval "wait \$chat$i" || rc=$?
  [ $rc = 0 ] && [ "$(cat "$T/chat.$i")" = "$full" ] || fail "chat $i (rc $rc): $(cat "$T/chat.$i") / $(cat "$T/chat.$i.err")"
done
wait $stream1 $chat1 2>/dev/null || true

# The provider saw at most 2 at once, and at least 8 requests (the killed two may have begun).
n=$(wc -l <"$T/provider.requests")
[ "$n" -ge 8 ] || fail "the provider logged $n requests"
most=$(max_overlap "$T/provider.requests")
[ "$most" -le 2 ] || fail "the provider had $most requests in flight at once (max_concurrent = 2)"
[ "$most" = 2 ] || fail "never 2 in flight at once: the cap was not reached ($most)"
llmctl reap -q
sql() { python3 -c 'import sqlite3,sys; print(sqlite3.connect("file:%s?mode=rw" % sys.argv[1], uri=True).execute(sys.argv[2]).fetchone()[0])' "$1" "$2"; }
[ "$(sql "$LLMCTL_HOME/state.db" "SELECT count(*) FROM leases")" = 0 ] || fail "leases left after reap: $(sql "$LLMCTL_HOME/state.db" "SELECT group_concat(model||':'||state) FROM leases")"
echo "tls_slots: ok (provider: $n requests, at most $most at once)"
