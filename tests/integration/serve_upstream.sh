# llmctl serve's /upstream/NAME/PATH: PATH, its query and the body go to NAME's server as they
# are, its status, content type and body come back (SSE as it arrives). A GET neither starts nor
# queues (503 while the model is stopped); a POST takes a lease and starts the model like any
# request, and waits for the slot. Unknown names, missing paths, other methods and paths that try
# to climb out of the model's server (or out of an external model's URL base) are refused.
. "$TEST_LIB"
# At exit, first the whole tree of each background job (a client's curl runs under a subshell).
kill_tree() { local c; for c in $(ps -o pid= --ppid "$1"); do kill_tree "$c"; done; kill -KILL "$1" 2>/dev/null || true; }
on_cleanup() { local p; for p in $(jobs -p); do kill_tree "$p"; done; }
port=$((PORT_BASE + 50))
export SERVE_KEY=upstream-key-1
mock_config
# m: one slot; its streams pause after the first token until $T/go exists.
mock_model m --startup-delay 1s --reply-tokens 3 --hold-until "$T/go"
config_add 'max_concurrent = 1' 'aliases = ["mm"]'
mock_model m2
# x: an external model whose URL has a base path: this gateway's own /upstream/m (with its key).
config_add '[models.x]' "url = \"http://127.0.0.1:$port/upstream/m\"" 'api_key_env = "SERVE_KEY"'
! port_open $port || fail "port $port is already taken"
start_serve $port --api-key-env SERVE_KEY
# call NAME URL-PATH [CURL ARG...]: a request through serve with the key; $T/NAME.code (the HTTP
# code), $T/NAME.head and $T/NAME.body. The path goes as it is written (no dot-segment folding).
call() {
  local name=$1 path=$2
  shift 2
  curl -s --path-as-is -m 30 -H "Authorization: Bearer $SERVE_KEY" -D "$T/$name.head" -o "$T/$name.body" \
    -w '%{http_code}' "$@" "$SERVE_URL$path" >"$T/$name.code" || true
}
code_is() { [ "$(cat "$T/$1.code")" = "$2" ] || fail "$1: HTTP $(cat "$T/$1.code"), want $2: $(head -c 500 "$T/$1.body")"; }
# error_is NAME STATUS CODE: an OpenAI error body with that code.
error_is() {
  code_is "$1" "$2"
  [ "$(json_get error.code <"$T/$1.body")" = "$3" ] || fail "$1: error code, want $3: $(cat "$T/$1.body")"
}
header_of() { grep -i "^$2:" "$T/$1.head" | cut -d' ' -f2- | tr -d '\r'; }
stopped() { local s; s=$(ps_field "$1" status); [ -z "$s" ] || [ "$s" = stopped ]; }

# The key guard holds for /upstream/ as for every route.
[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE_URL/upstream/m/slots")" = 401 ] || fail "no key: not 401"

# A GET on a stopped model: 503 saying how to start it; nothing starts, nothing queues.
call get_stopped /upstream/m/slots
error_is get_stopped 503 model_not_running
grep -q 'llmctl start m' "$T/get_stopped.body" || fail "no hint to start: $(cat "$T/get_stopped.body")"
call get_alias /upstream/mm/metrics
error_is get_alias 503 model_not_running
stopped m || fail "a GET started m: $(llmctl ps)"
[ "$(count_marked)" = 0 ] || fail "a server runs after the GETs: $(llmctl ps)"

# Unknown names (did-you-mean, as /v1), no path, other methods.
call unknown /upstream/n/slots
error_is unknown 404 model_not_found
grep -q 'did you mean \\"m\\"' "$T/unknown.body" || fail "no did-you-mean: $(cat "$T/unknown.body")"
call no_path /upstream/m
code_is no_path 404
call no_path_q '/upstream/m?x=1'
code_is no_path_q 404
call put /upstream/m/slots -X PUT
error_is put 405 method_not_allowed
call delete /upstream/m/slots -X DELETE
code_is delete 405
stopped m || fail "a refused request started m: $(llmctl ps)"

# A streaming POST to the stopped model starts it (loading comments), and its first event arrives
# while the mock still holds the rest: relayed as it comes, with the upstream's content type.
curl -sN --path-as-is -m 60 -H "Authorization: Bearer $SERVE_KEY" -D "$T/held.head" -o "$T/held.body" \
  "$SERVE_URL/upstream/m/completion" -d '{"prompt": "held stream", "stream": true}' &
held=$!
wait_for 30 grep -qs '^data: {.*tok0' "$T/held.body" || fail "the stream never began: $(cat "$T/held.body")"
grep -q '^: loading m ' "$T/held.body" || fail "no loading comment: $(head -3 "$T/held.body")"
[ "$(header_of held content-type)" = text/event-stream ] || fail "stream content type: $(cat "$T/held.head")"
field_is m status running || fail "m not running after the POST: $(llmctl ps)"
field_is m active 1 || fail "the stream holds no lease: $(llmctl ps)"

# While the slot is held, GETs go straight to the running server (no queue), query included:
# llama-server's /slots?fail_on_no_slot=1 answers 503 while its slot is busy, and that status
# comes back as it is.
call slots_busy '/upstream/m/slots?fail_on_no_slot=1'
code_is slots_busy 503
[ "$(json_get error.message <"$T/slots_busy.body")" = "no slot available" ] || fail "not the mock's 503: $(cat "$T/slots_busy.body")"
call slots /upstream/m/slots
code_is slots 200
[ "$(json_get 0.is_processing <"$T/slots.body")" = True ] || fail "slots: $(cat "$T/slots.body")"
call metrics /upstream/mm/metrics
code_is metrics 200
[ "$(header_of metrics content-type)" = 'text/plain; version=0.0.4' ] || fail "metrics content type: $(cat "$T/metrics.head")"
grep -qx 'llamacpp:requests_processing 1' "$T/metrics.body" || fail "metrics: $(cat "$T/metrics.body")"
# An answer with no body by its status (204): the head alone, without chunked framing, and the
# connection good for the next request (curl sends both on one connection).
call empty /upstream/m/empty
code_is empty 204
! grep -qi '^transfer-encoding:' "$T/empty.head" || fail "204 with chunked framing: $(cat "$T/empty.head")"
[ ! -s "$T/empty.body" ] || fail "204 with a body: $(cat "$T/empty.body")"
two=$(curl -s -m 10 -H "Authorization: Bearer $SERVE_KEY" -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
  "$SERVE_URL/upstream/m/empty" "$SERVE_URL/upstream/m/slots") || fail "204 then a request on its connection: curl failed: $two"
[ "$(echo $two)" = "204 1 200 0" ] || fail "204 then a request on its connection: $two"
grep -q '"GET /upstream/m/slots?fail_on_no_slot=1" model=m status=503' "$T/serve.$port.log" ||
  fail "no access-log line: $(tail -5 "$T/serve.$port.log")"

# A POST waits for the slot like any request: its lease queued in the state file.
call tokenize /upstream/m/tokenize -d '{"content": "hello big world"}' &
tokenize=$!
wait_for 20 field_is m queued 1 || fail "the POST never queued: $(llmctl ps)"
sleep 1 # it really waits: a second on, it still has no answer
[ ! -s "$T/tokenize.code" ] || fail "the POST was answered while the slot was held: $(cat "$T/tokenize.code")"
touch "$T/go"
wait "$held" || fail "the held stream failed"
[ "$(sse_text <"$T/held.body")" = "tok0 tok1 tok2" ] || fail "held stream: $(cat "$T/held.body")"
wait "$tokenize"
code_is tokenize 200
[ "$(json_get tokens <"$T/tokenize.body")" = "[6, 4, 5]" ] || fail "tokenize: $(cat "$T/tokenize.body")"
wait_for 10 field_is m active 0 || fail "a lease left: $(llmctl ps)"
field_is m queued 0 || fail "a waiting lease left: $(llmctl ps)"

# The body goes as it is: "model" is not rewritten (through /v1 this name would be a 404).
call whole /upstream/m/v1/chat/completions -d "$(chat_body not-a-configured-name hi)"
code_is whole 200
[ "$(json_get model <"$T/whole.body")" = not-a-configured-name ] || fail "the body was changed: $(cat "$T/whole.body")"

# An external model: its URL base, with its key (x is this gateway's /upstream/m).
call ext /upstream/x/slots
code_is ext 200
[ "$(json_get 0.id <"$T/ext.body")" = 0 ] || fail "external: $(cat "$T/ext.body")"

# Paths that try to leave the model's server (or x's base, /upstream/m, for /upstream/m2) are
# refused before anything is sent; m2 runs, and its server never sees them.
llmctl start m2 >/dev/null
m2_log=$(ps_field m2 log_path)
n=0
for p in '/upstream/m/../m2/slots' '/upstream/m/./../m2/slots' '/upstream/m/%2e%2e/m2/slots' '/upstream/m/.%2E/m2/slots' \
  '/upstream/m/..%2fm2/slots' '/upstream/m/..%5Cm2/slots' '/upstream/m/..;/m2/slots' '/upstream/m/%252e%252e/m2/slots' \
  '/upstream/x/../m2/slots' '/upstream/x/%2e%2e/m2/slots' '/upstream/m//127.0.0.1/slots'; do
  n=$((n + 1))
  call "trav$n" "$p"
  error_is "trav$n" 400 invalid_path
  call "trav_post$n" "$p" -d '{}'
  error_is "trav_post$n" 400 invalid_path
done
# An encoded separator in the name is no model's name.
call trav_name '/upstream/m%2f..%2fm2/slots'
error_is trav_name 404 model_not_found
! grep -q 'request [A-Z]* /slots' "$m2_log" || fail "a traversal reached m2: $(grep 'request' "$m2_log")"
! grep -q 'request [A-Z]* [^ ]*[.%;\\]' "$(ps_field m log_path)" || fail "a traversal reached m: $(grep 'request' "$(ps_field m log_path)")"
field_is m active 0 && field_is m queued 0 || fail "a refused POST left a lease: $(llmctl ps)"
echo "serve_upstream: ok"
