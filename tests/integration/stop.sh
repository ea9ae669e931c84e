# stop leaves nothing alive: a server that ignores SIGTERM, one that forks, one whose child escapes.
. "$TEST_LIB"
cat >"$LLMCTL_CONFIG" <<EOT
[defaults]
port_range = [$PORT_BASE, $((PORT_BASE + 20))]
stop_timeout = "500ms"
[models.stubborn]
command = ["$MOCK_BIN", "--port", "{port}", "--ignore-sigterm"]
[models.forks]
command = ["$MOCK_BIN", "--port", "{port}", "--fork-children", "3"]
[models.escapes]
command = ["$MOCK_BIN", "--port", "{port}", "--escape-child"]
EOT
for m in stubborn forks escapes; do
  expect_rc 0 llmctl start "$m"
done
n=$(marked | wc -l)
[ "$n" -ge 7 ] || fail "expected >= 7 marked processes, saw $n"
expect_rc 0 llmctl stop stubborn forks escapes
left=$(marked)
[ -z "$left" ] || fail "processes left after stop: $left"
expect_rc 0 llmctl stop stubborn
echo "$ERR" | grep -q "not running" || fail "no note for a stopped server"
echo "stop: ok"
