# A model's cwd: "~" and "~/x" are the home directory; a relative one is relative to the config
# file's directory, and so is a relative command in it; one that does not exist is an error at
# config check (FILE:LINE:COL) and at start (naming the directory), not an empty log tail.
. "$TEST_LIB"
mkdir -p "$T/cfg/srv" "$T/home"
cp "$MOCK_BIN" "$T/cfg/srv/server"
cat >"$T/cfg/ok.toml" <<EOT
[defaults]
port_range = [$PORT_BASE, $((PORT_BASE + 20))]
stop_timeout = "5s"
[models.home]
command = ["$MOCK_BIN", "--port", "{port}"]
cwd = "~"
[models.rel]
command = ["./server", "--port", "{port}"]
cwd = "srv"
EOT
cat >"$T/cfg/bad.toml" <<EOT
[defaults]
port_range = [$PORT_BASE, $((PORT_BASE + 20))]
[models.nodir]
command = ["$MOCK_BIN", "--port", "{port}"]
cwd = "/nonexistent/place"
EOT
cwd_of() { readlink "/proc/$(ps_field "$1" pid --config "$T/cfg/ok.toml")/cwd"; }
export HOME="$T/home"
cd /   # a relative cwd must not depend on where llmctl runs
expect_rc 0 llmctl --config "$T/cfg/ok.toml" config check
expect_rc 0 llmctl --config "$T/cfg/ok.toml" start home
[ "$(cwd_of home)" = "$T/home" ] || fail "cwd ~ ran in $(cwd_of home)"
expect_rc 0 llmctl --config "$T/cfg/ok.toml" start rel
[ "$(cwd_of rel)" = "$T/cfg/srv" ] || fail "cwd srv ran in $(cwd_of rel)"
llmctl --config "$T/cfg/ok.toml" stop --all -q
expect_rc 3 llmctl --config "$T/cfg/bad.toml" config check
echo "$ERR" | grep -q "bad.toml:5:7: \"cwd\" of model \"nodir\": /nonexistent/place: No such file or directory" || fail "config check: $ERR"
expect_rc 5 llmctl --config "$T/cfg/bad.toml" start nodir
echo "$ERR" | grep -q "cannot start .*: its cwd /nonexistent/place: No such file or directory" || fail "start nodir: $ERR"
[ -z "$(marked)" ] || fail "left $(marked)"
echo "cwd: ok"
