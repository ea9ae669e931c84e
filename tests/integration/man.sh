# Man pages: every page renders without a groff or man warning, every subcommand has a page
# that names each of its options, `config show --json` shows every key llmctl.toml(5) documents, and the example in
# llmctl.toml(5) is a valid config.
. "$TEST_LIB"
src=$(cd "$(dirname "$TEST_LIB")/../.." && pwd)
man_dir="$BUILD_DIR/man"
[ -d "$man_dir/man1" ] || fail "no man pages in $man_dir (is scdoc installed? make deps installs it)"
pages=$(find "$man_dir" -name '*.[15]' | sort)
[ "$(echo "$pages" | wc -l)" -ge 11 ] || fail "expected at least 11 pages, found: $pages"
for p in $pages; do
  w=$(groff -ww -man -Tutf8 -z "$p" 2>&1) || fail "groff failed on $p: $w"
  [ -z "$w" ] || fail "groff warns on $(basename "$p"): $w"
  w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null) || fail "man -l failed on $p: $w"
  [ -z "$w" ] || fail "man warns on $(basename "$p"): $w"
done
# Every subcommand has its page, and the page names every option of its --help.
cmds=$(llmctl --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && NF {print $1}')
[ -n "$cmds" ] || fail "no subcommands parsed from llmctl --help"
for c in $cmds; do
  scd="$src/man/llmctl-$c.1.scd"
  [ -f "$man_dir/man1/llmctl-$c.1" ] && [ -f "$scd" ] || fail "no man page for llmctl $c"
  grep -q "llmctl-$c\*(1)" "$src/man/llmctl.1.scd" || fail "llmctl(1) does not refer to llmctl-$c(1)"
  for o in $(llmctl "$c" --help | sed -n '/^Options:/,/^$/p' | grep -oE '^ +(-[a-z],)?--[a-z][a-z-]*' | grep -oE -- '--[a-z-]+'); do
    [ "$o" = --help ] && continue
    grep -q -- "\*$o\*" "$scd" || fail "llmctl-$c(1) does not document $o"
  done
done
for o in --config --state-dir --verbose --quiet --version; do
  grep -q -- "\*$o\*" "$src/man/llmctl.1.scd" || fail "llmctl(1) does not document $o"
done
# That llmctl.toml(5) documents every key the parser accepts, in its section, with its type and
# built-in default, is checked against the key table itself: tests/unit/config_keys_test.cpp.
# config show --json shows every key llmctl.toml(5) documents, resolved: [defaults] all of SHARED
# KEYS and DEFAULTS-ONLY KEYS; a managed model all of MODEL KEYS and SHARED KEYS but url and
# api_key_env (external only); an external model the keys a model llmctl only talks to uses.
section_keys() { sed -n "/^# $1\$/,/^# /p" "$src/man/llmctl.toml.5.scd" | grep -oE '^\*[a-z_]+\* = ' | grep -oE '[a-z_]+' | sort -u; }
model_keys=$(section_keys 'MODEL KEYS')
shared_keys=$(section_keys 'SHARED KEYS')
defaults_only_keys=$(section_keys 'DEFAULTS-ONLY KEYS')
[ "$(echo "$model_keys" | wc -l)" -ge 7 ] && [ "$(echo "$shared_keys" | wc -l)" -ge 15 ] && [ -n "$defaults_only_keys" ] ||
  fail "could not read the key sections of llmctl.toml(5): [$model_keys] [$shared_keys] [$defaults_only_keys]"
cat >"$T/show.toml" <<EOT
[defaults]
stall_timeout = "45s"
[models.managed]
command = ["x", "--port", "{port}"]
connect_timeout = "7s"
[models.outside]
url = "http://127.0.0.1:9"
api_key_env = "SOME_KEY"
EOT
expect_rc 0 llmctl --config "$T/show.toml" config show --json
python3 - "$OUT" "$model_keys" "$shared_keys" "$defaults_only_keys" <<'EOP' || fail "config show --json does not show every documented key"
import json, sys
j = json.loads(sys.argv[1])
model, shared, defaults_only = (set(a.split()) for a in sys.argv[2:5])
chat = {"connect_timeout", "first_token_timeout", "stall_timeout", "request_timeout", "queue_timeout"}
external = {"url", "api_key_env", "headers", "ca_file", "client_cert", "client_key", "tls_verify"}
want = {
    "defaults": shared | defaults_only,
    "managed": (model | shared) - external,
    "outside": external | {"model", "aliases", "max_concurrent"} | chat,
}
got = {"defaults": set(j["defaults"]), "managed": set(j["models"]["managed"]) - {"name", "kind"},
       "outside": set(j["models"]["outside"]) - {"name", "kind"}}
ok = True
for what in want:
    if got[what] != want[what]:
        print(f"{what}: missing {sorted(want[what] - got[what])}, not documented {sorted(got[what] - want[what])}", file=sys.stderr)
        ok = False
# Resolved: inherited and own values alike.
d, m, x = j["defaults"], j["models"]["managed"], j["models"]["outside"]
checks = [("defaults", d, "stall_timeout", "45s"), ("managed", m, "stall_timeout", "45s"), ("managed", m, "connect_timeout", "7s"),
          ("outside", x, "stall_timeout", "45s"), ("outside", x, "api_key_env", "SOME_KEY"), ("managed", m, "port", None),
          ("managed", m, "first_token_timeout", "5m"), ("defaults", d, "max_inflight", 0)]
for what, obj, key, want_v in checks:
    if obj.get(key, "(missing)") != want_v:
        print(f"{what}.{key} is {obj.get(key, '(missing)')!r}, want {want_v!r}", file=sys.stderr)
        ok = False
sys.exit(0 if ok else 1)
EOP
# The example config in llmctl.toml(5) validates.
sed -n '/^# EXAMPLE/,/^# SEE ALSO/p' "$src/man/llmctl.toml.5.scd" | sed -n '/^```$/,/^```$/p' | grep -v '^```' >"$T/example.toml"
[ -s "$T/example.toml" ] || fail "no example in llmctl.toml(5)"
expect_rc 0 llmctl --config "$T/example.toml" config check
echo "$OUT" | grep -q '^gpu-box: external' || fail "example config check: $OUT"
echo "man: ok ($(echo "$pages" | wc -l) pages)"
