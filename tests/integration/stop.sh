# stop leaves nothing alive: a server that ignores SIGTERM, one that forks, one whose child escapes.
. "$TEST_LIB"
mock_config 'stop_timeout = "500ms"'
mock_model stubborn --ignore-sigterm
mock_model forks --fork-children 3
mock_model escapes --escape-child
for m in stubborn forks escapes; do
  expect_rc 0 llmctl start "$m"
done
n=$(count_marked)
[ "$n" -ge 7 ] || fail "expected >= 7 marked processes, saw $n"
expect_rc 0 llmctl stop stubborn forks escapes
left=$(marked)
[ -z "$left" ] || fail "processes left after stop: $left"
expect_rc 0 llmctl stop stubborn
echo "$ERR" | grep -q "not running" || fail "no note for a stopped server"
echo "stop: ok"
