# Bad input of every kind gets a clear message ("llmctl: error: ..."), its documented exit code,
# starts nothing and leaves no partial state: missing, extra and invalid arguments, absurd
# values, names with / or .., an unreadable config, a read-only or foreign state dir (as the
# unprivileged user nobody: root ignores permissions), and a full disk (RLIMIT_FSIZE, with
# SIGXFSZ ignored so the write error surfaces).
. "$TEST_LIB"
mock_config
mock_model a
mock_model b
# check RC 'PATTERN' ARGS...: exit code, message, and no state dir created.
check() {
  local want=$1 pat=$2; shift 2
  expect_rc "$want" llmctl "$@"
  head -1 <<<"$ERR" | grep -q '^llmctl: error: ' || fail "'llmctl $*': no error line: $ERR"
  grep -qE -- "$pat" <<<"$ERR" || fail "'llmctl $*': message does not say '$pat': $ERR"
  [[ "$ERR" != *$'\e'* ]] || fail "'llmctl $*': escape codes in the message"
  [ ! -e "$LLMCTL_HOME" ] || fail "'llmctl $*' left state behind: $(ls -R "$LLMCTL_HOME")"
  [ -z "$(marked)" ] || fail "'llmctl $*' started something"
}
for c in start chat restart; do check 2 "$c needs a NAME" "$c"; done
check 2 'give a server name or --all' logs
check 2 'give server names or --all' stop
check 2 'give server names or --all' stop a --all
check 2 'state needs a subcommand: init or path' state
check 2 'config needs a subcommand: check or show' config
check 2 'ps: unexpected argument "extra"' ps extra
check 2 'reap: unexpected argument "extra"' reap extra
check 2 'config check: unexpected argument "extra"' config check extra
check 2 'start: unexpected argument "sleep"' start a sleep 30
check 2 'unknown option --bogus for start' start a --bogus
check 2 'unknown command "frobnicate"' frobnicate
check 2 'bad duration "-1"' start a --timeout -1
check 2 'bad duration "abc"' start a --timeout abc
check 2 'bad duration "1y"' stop a --timeout 1y
check 2 'bad duration "-5s"' reap --idle-timeout -5s
check 2 'bad duration "xx"' chat a --queue-timeout xx hi
check 2 'must be 0 or more, not -3' logs a -n -3
check 2 'logs: --lines takes a number, not "many"' logs a -n many
check 2 'must be from 1 to' chat a --max-tokens 0 hi
check 2 'must be from 1 to 1073741824, not 99999999999' chat a --max-tokens 99999999999 hi
check 2 'must be 0 or more' chat a --temperature -1 hi
check 2 'must be from 0 to 1' chat a --top-p 7 hi
check 2 'start: --port must be from 1 to 65535, not 0' start a --port 0
check 2 'must be from 1 to 65535, not 70000' start a --port 70000
check 2 'bad server name "../x"' start ../x
check 2 'bad server name "a/b"' start a/b -- sleep 1
check 2 'bad server name "../../etc/passwd"' logs ../../etc/passwd
check 2 'bad session name "../x"' chat a --session ../x hi
check 4 'unknown model "nope"' start nope
check 4 'unknown model "\.\."' chat .. hi
check 3 'cannot read config' --config "$T/missing.toml" start a
check 3 ':1:10: "models" must be a table' --config <(echo 'models = 3') start a
# -n with a huge count is fine: the whole log.
llmctl start a -q >/dev/null
expect_rc 0 llmctl logs a -n 99999999999
[ -n "$OUT" ] || fail "logs -n 99999999999 printed nothing"
llmctl stop a -q

# As nobody. The test dir is private; give nobody a way in.
chmod 711 "$T"
U="$T/u"
mkdir -m 755 "$U"
# nobody runs copies of the binaries: the build tree may sit in a private dir.
cp "$LLMCTL_BIN" "$MOCK_BIN" "$U/" && chmod 755 "$U/llmctl" "$U/llmctl-mock-server"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups env -i PATH=/usr/bin:/bin HOME="$U" "$@"; }
cp "$LLMCTL_CONFIG" "$U/config.toml" && chmod 644 "$U/config.toml"
cp "$LLMCTL_CONFIG" "$U/secret.toml" && chmod 600 "$U/secret.toml"   # root's, unreadable to nobody
nrun() { # WANT_RC PATTERN STATE_DIR ARGS...
  local want=$1 pat=$2 dir=$3; shift 3
  local rc=0
  as_nobody LLMCTL_HOME="$dir" "$U/llmctl" "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ $rc -eq "$want" ] || fail "as nobody, 'llmctl $*' in $dir exited $rc, want $want: $(cat "$T/err")"
  if [ -z "$pat" ]; then
    [ ! -s "$T/err" ] || fail "as nobody, 'llmctl $*' complained: $(cat "$T/err")"
  else
    grep -qE -- "$pat" "$T/err" || fail "as nobody, 'llmctl $*': message does not say '$pat': $(cat "$T/err")"
  fi
}
nrun 3 "cannot read config $U/secret.toml" "$U/s0" --config "$U/secret.toml" config check
[ ! -e "$U/s0" ] || fail "a config error created the state dir"
# A read-only state dir (nobody's own, mode 0500): start cannot create its files.
mkdir -m 500 "$U/ro" && chown nobody "$U/ro"
nrun 1 'llmctl: error: .*(Permission denied|read-only|cannot)' "$U/ro" --config "$U/config.toml" start a
[ -z "$(ls -A "$U/ro")" ] || fail "a failed start left files in the read-only dir: $(ls -A "$U/ro")"
nrun 0 '' "$U/ro" --config "$U/config.toml" ps   # nothing to list, no error
# Root's state dir: nobody may not use it.
mkdir -m 700 "$U/roots"
nrun 1 'state dir .*/roots is owned by uid 0, not by you' "$U/roots" --config "$U/config.toml" start a
# A state file nobody may not write (root's, in nobody's dir).
mkdir -m 700 "$U/mixed" && chown nobody "$U/mixed"
nrun 0 "schema version [0-9]" "$U/mixed" state init
chown root "$U/mixed"/state.db*
chmod 644 "$U/mixed"/state.db*
sum=$(sha256sum <"$U/mixed/state.db")
nrun 1 'state file .* (can only be opened read-only|readonly|Permission denied)' "$U/mixed" --config "$U/config.toml" start a
[ "$(sha256sum <"$U/mixed/state.db")" = "$sum" ] || fail "the unwritable state file changed"
[ -z "$(marked)" ] || fail "a failed start as nobody left a server"

# A full disk: the file size limit stops the state file from growing. start fails with a
# clear message, kills the server it spawned, and the state stays consistent.
llmctl start a -q >/dev/null
pid_a=$(ps_field a pid)
llmctl reap -q   # checkpoint
rc=0
bash -c 'trap "" XFSZ; ulimit -f 1; exec "$@"' _ "$LLMCTL_BIN" start b >"$T/out" 2>"$T/err" || rc=$?
[ $rc -eq 1 ] || fail "start under a full disk exited $rc, want 1: $(cat "$T/err")"
grep -qE 'llmctl: error: .*(too large|disk|full|I/O)' "$T/err" || fail "full disk message: $(cat "$T/err")"
[ "$(marked)" = "$pid_a" ] || fail "after the failed start, marked processes: $(marked), want only a ($pid_a)"
expect_rc 0 llmctl ps --json
[ "$(ps_rows name,status)" = "a:running" ] || fail "state after the failed start: $OUT"
python3 -c 'import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute("pragma integrity_check").fetchone()[0]; sys.exit(r != "ok")' "$LLMCTL_HOME/state.db" ||
  fail "integrity_check failed after the full disk"
expect_rc 0 llmctl start b   # and with room again, all is well
llmctl stop --all -q
echo "bad input: ok"
