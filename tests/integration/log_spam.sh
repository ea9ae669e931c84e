# A server writing 256 MiB to stdout at full speed finishes: output goes to a file, never a pipe.
. "$TEST_LIB"
cat >"$LLMCTL_CONFIG" <<EOT
[defaults]
port_range = [$PORT_BASE, $((PORT_BASE + 20))]
[models.spam]
command = ["$MOCK_BIN", "--port", "{port}", "--log-spam", "256MiB"]
EOT
expect_rc 0 llmctl start spam
log="$LLMCTL_HOME/logs/spam.log"
wait_for 60 sh -c "tail -c 4096 \"$log\" | grep -q \"log spam done\"" || fail "the server never finished writing its log"
size=$(stat -c %s "$log")
[ "$size" -ge $((256 * 1024 * 1024)) ] || fail "log holds $size bytes, want >= 256MiB"
[ "$(stat -c %a "$log")" = 600 ] || fail "log mode $(stat -c %a "$log")"
expect_rc 0 llmctl stop spam
echo "log_spam: ok"
