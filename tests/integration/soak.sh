# The soak tool's short form (the long form is run by hand: tests/soak/soak.py --ops 10000):
# 600 random operations by 4 workers on 3 models, with llmctl invocations and servers killed
# at random; then one reap and every invariant (see tests/soak/soak.py).
. "$TEST_LIB"
src=$(cd "$(dirname "$TEST_LIB")/../.." && pwd)
python3 "$src/tests/soak/soak.py" --llmctl "$LLMCTL_BIN" --mock "$MOCK_BIN" --port-base "$PORT_BASE" \
  --ops 600 --workers 4 --models 3 --seed 7 --kill-every 0.08 || fail "soak found invariant violations"
