# A server writing 256 MiB to stdout at full speed finishes: output goes to a file, never a pipe.
. "$TEST_LIB"
mock_config
mock_model spam --log-spam 256MiB
expect_rc 0 llmctl start spam
log="$LLMCTL_HOME/logs/spam.log"
wait_for 60 sh -c "tail -c 4096 \"$log\" | grep -q \"log spam done\"" || fail "the server never finished writing its log"
size=$(stat -c %s "$log")
[ "$size" -ge $((256 * 1024 * 1024)) ] || fail "log holds $size bytes, want >= 256MiB"
[ "$(stat -c %a "$log")" = 600 ] || fail "log mode $(stat -c %a "$log")"
expect_rc 0 llmctl stop spam
echo "log_spam: ok"
