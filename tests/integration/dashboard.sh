# serve's web dashboard (issue 22) in headless Chromium (Debian's chromium, driven by puppeteer-core
# from the npm registry, installed into the build dir by tests/tools/npm-install.sh): the page
# loads without a key; a wrong key shows the 401 message; the right key lists the configured
# models; start turns a stopped model running; its log streams (a line the server writes shows
# without a reload); the chat box answers; stop stops it (tests/integration/dashboard.mjs). The
# screenshots are kept in BUILD_DIR/screenshots. Then the API by curl: its routes, methods, key
# and Origin check, and that a followed log ends when its client goes.
. "$TEST_LIB"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BUILD_DIR:?the build dir, where the npm prefix lives}"
command -v chromium >/dev/null || fail "chromium is not installed (make test installs it)"
prefix=$(bash "$here/../tools/npm-install.sh" "$BUILD_DIR") || fail "could not install puppeteer-core (see above)"
export PUPPETEER_PKG="$prefix/node_modules/puppeteer-core" SHOTS="$BUILD_DIR/screenshots"
mkdir -p "$SHOTS"

mock_config
mock_model alpha --startup-delay 1s
mock_model beta
config_add 'max_concurrent = 2'
export DASH_KEY=sk-dashboard-test-1234
start_serve $((PORT_BASE + 10)) --api-key-env DASH_KEY
export SERVE_URL SERVE_KEY=$DASH_KEY STOPPED_MODEL=alpha EXPECT_MODELS=alpha,beta
node "$here/dashboard.mjs" >"$T/browser.out" 2>&1 || fail "the dashboard in chromium:
$(cat "$T/browser.out")
serve's log: $(tail -20 "$T/serve.$((PORT_BASE + 10)).log")"
[ "$(grep -c '^ok: ' "$T/browser.out")" -ge 7 ] || fail "the browser ran too few checks: $(cat "$T/browser.out")"
[ -s "$SHOTS/dashboard.png" ] || fail "no screenshot"

# The API by curl.
auth=(-H "Authorization: Bearer $DASH_KEY")
code() { curl -s -o "$T/api.out" -w '%{http_code}' "$@"; }
[ "$(code "$SERVE_URL/ui")" = 200 ] && grep -q '<title>llmctl</title>' "$T/api.out" || fail "GET /ui without a key"
[ "$(code "$SERVE_URL/api/status")" = 401 ] || fail "/api/status without a key: $(cat "$T/api.out")"
[ "$(code "${auth[@]}" "$SERVE_URL/api/status")" = 200 ] || fail "/api/status: $(cat "$T/api.out")"
[ "$(json_get models.0.name <"$T/api.out")" = alpha ] && [ "$(json_get models.0.status <"$T/api.out")" = stopped ] ||
  fail "/api/status models: $(cat "$T/api.out")"
[ "$(code "${auth[@]}" "$SERVE_URL/api/events?limit=2")" = 200 ] || fail "/api/events: $(cat "$T/api.out")"
python3 -c 'import json,sys; e=json.load(sys.stdin)["events"]; assert len(e) == 2 and e[0]["id"] < e[1]["id"], e' <"$T/api.out" ||
  fail "/api/events?limit=2: $(cat "$T/api.out")"
# After an id beyond the file's (a page that polled a state file since made anew): none, and the
# newest id, below it, for the page to start over.
[ "$(code "${auth[@]}" "$SERVE_URL/api/events?after=1000000")" = 200 ] || fail "/api/events?after=1000000: $(cat "$T/api.out")"
python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["events"] == [] and 0 < j["newest"] < 1000000, j' <"$T/api.out" ||
  fail "/api/events?after=1000000: $(cat "$T/api.out")"
[ "$(code "${auth[@]}" -X POST "$SERVE_URL/api/models/nosuch/start")" = 404 ] || fail "start of an unknown model: $(cat "$T/api.out")"
[ "$(code "${auth[@]}" "$SERVE_URL/api/models/beta/start")" = 405 ] || fail "GET of an action: $(cat "$T/api.out")"
[ "$(code "${auth[@]}" "$SERVE_URL/api/nothing")" = 404 ] || fail "an unknown API route: $(cat "$T/api.out")"
# Another site's page cannot act (the Origin check), the gateway's own can.
[ "$(code "${auth[@]}" -X POST -H "Origin: http://evil.example" "$SERVE_URL/api/models/beta/start")" = 403 ] ||
  fail "a cross-site start: $(cat "$T/api.out")"
[ "$(ps_field beta status)" = "" ] || fail "a refused start started beta"
[ "$(code "${auth[@]}" -X POST -H "Origin: $SERVE_URL" "$SERVE_URL/api/models/beta/start")" = 200 ] ||
  fail "a same-origin start: $(cat "$T/api.out")"
[ "$(ps_field beta status)" = running ] || fail "beta not running after the API's start"
# A followed log ends on the gateway's side when its client goes (no thread left behind).
curl -sN "${auth[@]}" "$SERVE_URL/api/logs/beta?lines=5" >"$T/follow.out" &
follower=$!
wait_for 10 grep -q "model loaded" "$T/follow.out" || fail "the followed log: $(cat "$T/follow.out")"
curl -sf "$SERVE_URL/v1/chat/completions" "${auth[@]}" -d "$(chat_body beta "followed")" >/dev/null || fail "a chat to beta"
wait_for 10 grep -q "POST /v1/chat/completions" "$T/follow.out" || fail "the followed log missed a new line: $(cat "$T/follow.out")"
kill $follower
wait $follower 2>/dev/null || true
# A log still followed when serve stops ends at once: it does not hold the drain.
curl -sN "${auth[@]}" "$SERVE_URL/api/logs/beta" >"$T/follow2.out" &
follower=$!
wait_for 10 grep -q "model loaded" "$T/follow2.out" || fail "the second followed log: $(cat "$T/follow2.out")"
kill -TERM $SERVE_PID
wait_for 5 eval '! alive $SERVE_PID' || fail "serve did not stop within 5 s while a log was followed"
rc=0; wait $SERVE_PID || rc=$?
[ $rc = 0 ] || fail "serve exited $rc after the dashboard's requests"
wait $follower 2>/dev/null || true
echo "dashboard: ok"
