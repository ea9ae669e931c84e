# The soak tool's short forms (the long form is run by hand: tests/soak/soak.py --ops 10000):
# 600 random operations by 4 workers on 3 models, with llmctl invocations and servers killed
# at random; then one reap and every invariant (see tests/soak/soak.py).
. "$TEST_LIB"
src=$(cd "$(dirname "$TEST_LIB")/../.." && pwd)
python3 "$src/tests/soak/soak.py" --llmctl "$LLMCTL_BIN" --mock "$MOCK_BIN" --port-base "$PORT_BASE" \
  --ops 600 --workers 4 --models 3 --seed 7 --kill-every 0.08 || fail "soak found invariant violations"
# The same with memory pools (tests/soak/soak.py --pool): 4 models of 1 GiB in a pool of 2 GiB;
# no instant with more than 2 live servers (an observer reading /proc), no chat cut by an eviction.
python3 "$src/tests/soak/soak.py" --llmctl "$LLMCTL_BIN" --mock "$MOCK_BIN" --port-base "$PORT_BASE" \
  --ops 400 --workers 4 --models 4 --pool 2 --seed 9 --kill-every 0.08 || fail "the soak with a pool found invariant violations"
# With crashes (tests/soak/soak.py --crash): restart = "on-failure" on every model, and a third of
# the chaos thread's kills are crashes of servers by SIGSEGV, SIGABRT, SIGBUS or SIGKILL; every
# crash must be in the exit history with its signal, and the invariants hold once restarts settle.
python3 "$src/tests/soak/soak.py" --llmctl "$LLMCTL_BIN" --mock "$MOCK_BIN" --port-base "$PORT_BASE" \
  --ops 300 --workers 4 --models 3 --seed 11 --kill-every 0.08 --crash --server-kill-share 0.3 ||
  fail "the soak with crashes found invariant violations"
