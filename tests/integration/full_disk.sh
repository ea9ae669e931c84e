# A full disk never makes a server unstoppable: with the state dir on a full tmpfs (filled by a
# server's own log), stop, stop --all --no-drain and reap signal the proven servers and say what
# they could not record; a start that cannot write its row, or cannot record that its server is
# ready, leaves no server running. Once there is room again, reap records the rest.
. "$TEST_LIB"
if [ "$(id -u)" != 0 ]; then echo "full_disk: skipped (needs root to mount a tmpfs)"; exit 0; fi
fs=$T/fs
mkdir -p "$fs"
mount -t tmpfs -o size=2m,mode=0700 tmpfs "$fs" || fail "cannot mount a tmpfs on $fs"
on_cleanup() {
  "$LLMCTL_BIN" stop --all -q --no-drain >/dev/null 2>&1 || true
  for p in $(marked); do kill -KILL "$p" 2>/dev/null || true; done
  wait_for 10 umount "$fs" 2>/dev/null || umount -l "$fs"
}
export LLMCTL_HOME=$fs/state
# filler: writes to its log (the tmpfs) until it is full, says so in $T/full, then idles. (One
# that kept trying took the page a reader frees when it rebuilds the -shm file, and the reader
# failed: a known limit, see docs/ARCHITECTURE.md "Full disk".)
filler='import errno, os, sys, time
line = b"x" * 1023 + b"\n"
while True:
    try:
        os.write(1, line)
    except OSError as e:
        if e.errno != errno.ENOSPC: raise
        open(sys.argv[1], "w").close()
        while True: time.sleep(60)'
mock_config 'stop_timeout = "5s"'
for m in other gone third; do mock_model $m; done
mock_model spammer --log-spam 4194304 --loading-until "$T/spammer.loaded"
config_add <<EOT
[models.filler]
command = ["python3", "-c", "$(printf '%s' "$filler" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read())[1:-1])')", "$T/full"]
health = "tcp"
EOT
pid_of() { ps_field "$1" pid -a; }
free_kib() { echo $(( $(stat -f -c '%a * %S' "$fs") / 1024 )); }

expect_rc 0 llmctl start other
expect_rc 0 llmctl start gone
other=$(pid_of other) gone=$(pid_of gone)
expect_rc 0 llmctl start filler --no-wait
wait_for 30 test -e "$T/full" || fail "the filler never filled $fs"
filler_pid=$(pid_of filler)
[ "$(free_kib)" -lt 8 ] || fail "$fs is not full: $(free_kib) KiB free"
kill -KILL "$gone"

# A start cannot write its row: exit 1, and the server it spawned is gone.
expect_rc 1 llmctl start third
echo "$ERR" | grep -q "disk full" || fail "start on a full disk: $ERR"
[ -z "$(pid_of third)" ] && [ "$(count_marked)" = 2 ] || fail "start on a full disk left a server: $(marked)"

# stop: the server is stopped, and the warning says the state file could not record it.
expect_rc 0 llmctl stop other
! alive "$other" || fail "stop on a full disk left other running"
echo "$ERR" | grep -q "warning: other (pid $other) is stopped, but the state file could not record it: .*disk full" || fail "stop's warning: $ERR"

# reap: what it found is not recorded, but it still acts (and says so).
expect_rc 0 llmctl reap
echo "$OUT" | grep -q "^reaped gone (pid $gone)" || fail "reap on a full disk: $OUT / $ERR"
echo "$ERR" | grep -q "warning: reap: could not record what reap found" || fail "reap's warning: $ERR"

# stop --all --no-drain: the filler too, while it keeps the disk full.
expect_rc 0 llmctl stop --all --no-drain
! alive "$filler_pid" || fail "stop --all left the filler filling the disk"
[ -z "$(marked)" ] || fail "stop --all on a full disk left: $(marked)"

# Room again: reap records what could not be, and the rows are gone.
rm -f "$LLMCTL_HOME/logs/filler.log"
expect_rc 0 llmctl reap -q
[ -z "$(llmctl ps -a -q)" ] || fail "rows left after reap with room: $(llmctl ps -a)"

# A server that fills the disk while it loads: start cannot record that it is ready, so it
# stops it rather than leave it running in `starting`.
llmctl start spammer >"$T/sp.out" 2>"$T/sp.err" &
sp=$!
wait_for 30 eval '[ "$(free_kib)" -lt 8 ]' || fail "the spammer never filled $fs"
touch "$T/spammer.loaded"
rc=0; wait $sp || rc=$?
[ $rc -eq 1 ] || fail "start whose ready mark could not be written exited $rc: $(cat "$T/sp.err")"
grep -q "spammer became ready, but the state file could not record it" "$T/sp.err" || fail "start's message: $(cat "$T/sp.err")"
[ -z "$(marked)" ] || fail "the spammer was left running: $(marked)"
echo "full_disk: ok"
