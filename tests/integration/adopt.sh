# kill -9 of `llmctl start` during the health wait: the next start adopts, never duplicates.
. "$TEST_LIB"
mock_config
mock_model m --startup-delay 500ms
for point in committed spawn ready; do
  rc=0; LLMCTL_FAULT=crash-after:$point llmctl start m >/dev/null 2>&1 || rc=$?
  [ $rc -eq 137 ] || fail "fault $point: start exited $rc, want 137 (SIGKILL)"
  expect_rc 0 llmctl start m
  url=$OUT
  expect_rc 0 llmctl start m
  [ "$OUT" = "$url" ] || fail "second start gave $OUT, first $url"
  n=$(count_marked)
  [ "$n" = 1 ] || { for q in $(marked); do tr "\0" " " </proc/$q/cmdline; echo; done; fail "fault $point: $n live servers, want 1"; }
  llmctl stop m -q
done
echo "adopt: ok"
