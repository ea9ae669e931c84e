# Install: `cmake --install` into a temp prefix gives a working llmctl (the echo story, with
# the mock server from libexec), man pages that `man` finds through MANPATH, and bash
# completion from its installed place. Then `cpack -G DEB` builds a .deb whose dependencies
# this machine satisfies (apt-get --simulate) and which installs into a throwaway root
# (dpkg --root), runs the echo story and is removed again. Nothing is installed into the
# real system, so no later test can pick up an installed llmctl.
. "$TEST_LIB"
P="$T/prefix"
cmake --install "$BUILD_DIR" --prefix "$P" >"$T/install.log" 2>&1 || fail "cmake --install: $(tail -5 "$T/install.log")"
for f in bin/llmctl libexec/llmctl/llmctl-mock-server libexec/llmctl/llmctl-tls libexec/llmctl/llmctl-top share/man/man1/llmctl.1 share/man/man1/llmctl-start.1 \
  share/man/man5/llmctl.toml.5 share/bash-completion/completions/llmctl share/zsh/site-functions/_llmctl \
  share/fish/vendor_completions.d/llmctl.fish share/doc/llmctl/examples/ci-smoke.sh; do
  [ -e "$P/$f" ] || fail "cmake --install did not install $f"
done
page=$(MANPATH="$P/share/man" MANWIDTH=80 man llmctl-start 2>"$T/man.err") || fail "man llmctl-start: $(cat "$T/man.err")"
echo "$page" | grep -q 'llmctl-start - start a server, once, and print its URL' || fail "man llmctl-start rendered: $(echo "$page" | head -5)"
MANPATH="$P/share/man" man -w llmctl.toml >/dev/null || fail "man llmctl.toml not found"

# The echo story with the installed binaries only: no config, i.e. the built-in echo model,
# whose mock server the installed llmctl finds in PREFIX/libexec/llmctl (on a test port).
story() { # BIN_DIR PORT
  local home="$T/story.$2"
  ( export LLMCTL_HOME=$home LLMCTL_CONFIG= XDG_CONFIG_HOME=/nonexistent
    "$1/llmctl" config check 2>/dev/null | grep -q "runs $(dirname "$1")/libexec/llmctl/llmctl-mock-server" || exit 6
    url=$("$1/llmctl" start echo --port "$2") || exit 1
    reply=$("$1/llmctl" chat echo hi) || exit 2
    [ "$reply" = hi ] || { echo "reply: $reply" >&2; exit 3; }
    "$1/llmctl" ps -q | grep -qx echo || exit 4
    "$1/llmctl" stop echo -q || exit 5
    echo "$url" )
}
url=$(story "$P/bin" $((PORT_BASE + 1))) || fail "echo story with the installed llmctl failed (rc=$?)"
[ "$url" = "http://127.0.0.1:$((PORT_BASE + 1))" ] || fail "installed start printed: $url"
# top's view, found in PREFIX/libexec/llmctl.
out=$(LLMCTL_HOME="$T/story.$((PORT_BASE + 1))" "$P/bin/llmctl" top --once 2>&1) || fail "installed top --once: $out"
echo "$out" | grep -q "^SERVERS (0)" || fail "installed top --once printed: $out"

# Bash completion from the installed file, with the installed llmctl on PATH.
cat >"$LLMCTL_CONFIG" <<EOT
[models.tiny]
command = ["x"]
[models.small]
command = ["x"]
EOT
got=$(PATH="$P/bin:$PATH" bash -c '. "$1"; COMP_WORDS=(llmctl logs ""); COMP_CWORD=2; _llmctl; echo "${COMPREPLY[*]}"' _ \
  "$P/share/bash-completion/completions/llmctl")
[ "$(echo $got | tr ' ' '\n' | sort | xargs)" = "small tiny" ] || fail "installed completion of 'llmctl logs': [$got]"
got=$(bash -c '. "$1"; COMP_WORDS=(llmctl st); COMP_CWORD=1; _llmctl; echo "${COMPREPLY[*]}"' _ "$P/share/bash-completion/completions/llmctl")
[ "$got" = "start stop" ] || fail "installed completion of 'llmctl st': [$got]"

# The .deb.
cpack -G DEB --config "$BUILD_DIR/CPackConfig.cmake" -B "$T/pkg" >"$T/cpack.log" 2>&1 || fail "cpack: $(tail -5 "$T/cpack.log")"
deb=$(ls "$T"/pkg/llmctl_*.deb) || fail "cpack made no .deb: $(ls "$T/pkg")"
dpkg-deb -c "$deb" >"$T/contents" || fail "dpkg-deb -c $deb"
for f in usr/bin/llmctl usr/libexec/llmctl/llmctl-mock-server usr/libexec/llmctl/llmctl-top usr/share/man/man1/llmctl-start.1 \
  usr/share/bash-completion/completions/llmctl usr/share/zsh/vendor-completions/_llmctl; do
  grep -q " \./$f\$" "$T/contents" || fail ".deb lacks /$f"
done
# chat's interactive loop dlopens libedit, which dpkg-shlibdeps cannot see: a recommendation.
dpkg-deb -f "$deb" Recommends | grep -qw libedit2 || fail ".deb does not recommend libedit2: $(dpkg-deb -f "$deb" Recommends)"
apt-get install --simulate "$deb" >"$T/apt.log" 2>&1 || fail "apt-get --simulate install: $(tail -5 "$T/apt.log")"
grep -q '^Inst llmctl ' "$T/apt.log" || fail "apt would not install the .deb: $(tail -5 "$T/apt.log")"
R="$T/root"
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers"
touch "$R/var/lib/dpkg/status"
# The throwaway root has no other packages; the libraries are the host's (checked just above).
dpkg --root="$R" --force-depends -i "$deb" >"$T/dpkg.log" 2>&1 || fail "dpkg -i: $(tail -5 "$T/dpkg.log")"
dpkg --root="$R" -s llmctl | grep -q '^Status: install ok installed' || fail "dpkg does not list llmctl as installed"
story "$R/usr/bin" $((PORT_BASE + 2)) >/dev/null || fail "echo story with the .deb's llmctl failed"
dpkg --root="$R" -r llmctl >"$T/dpkg-r.log" 2>&1 || fail "dpkg -r: $(tail -5 "$T/dpkg-r.log")"
[ ! -e "$R/usr/bin/llmctl" ] || fail "dpkg -r left /usr/bin/llmctl"
echo "install: ok ($(basename "$deb"), $(stat -c %s "$deb") bytes)"
