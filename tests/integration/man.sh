# Man pages: every page renders without a groff or man warning, every subcommand has a page
# that names each of its options, llmctl.toml(5) names every config key, and the example in
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
# Every key the config parser accepts is documented in llmctl.toml(5).
keys=$(sed -n '/^const std::vector<std::string> k_default_keys/,/};/p;/^const std::vector<std::string> k_model_keys/,/};/p' \
  "$src/lib/llmctl/config.cpp" | grep -oE '"[a-z_]+"' | tr -d '"' | sort -u)
[ "$(echo "$keys" | wc -l)" -ge 20 ] || fail "could not read the config keys from config.cpp: $keys"
for k in $keys; do
  grep -q "^\*$k\* = " "$src/man/llmctl.toml.5.scd" || fail "llmctl.toml(5) does not document $k"
done
# The example config in llmctl.toml(5) validates.
sed -n '/^# EXAMPLE/,/^# SEE ALSO/p' "$src/man/llmctl.toml.5.scd" | sed -n '/^```$/,/^```$/p' | grep -v '^```' >"$T/example.toml"
[ -s "$T/example.toml" ] || fail "no example in llmctl.toml(5)"
expect_rc 0 llmctl --config "$T/example.toml" config check
echo "$OUT" | grep -q '^gpu-box: external' || fail "example config check: $OUT"
echo "man: ok ($(echo "$pages" | wc -l) pages)"
