# The two README commands: `make demo` (build, run the main job on the embedded default)
# and `make test` (build, run every test). Both install missing Debian packages first.
BUILD ?= build
JOBS ?= 2
DEBS = cmake make g++ pkg-config python3 libcli11-dev libboost1.81-dev libboost-filesystem1.81-dev \
       libsqlite3-dev libfmt-dev libtomlplusplus-dev nlohmann-json3-dev libgtest-dev \
       scdoc man-db groff-base zsh fish tmux dpkg-dev file curl clang libclang-rt-14-dev libedit2 libedit-dev \
       libssl-dev openssl libncurses-dev

FUZZ_TARGETS = fuzz_config fuzz_sse fuzz_chat_json fuzz_units fuzz_state fuzz_request_fields fuzz_gguf

.PHONY: deps build test test-normal test-asan test-fuzz test-tsan bench demo clean format

# Node and npm, for the tests that drive `serve` with the official openai client and the one that
# reads GGUF headers with @huggingface/gguf (tests/tools/npm-install.sh): installed only when there
# is no npm at all, so that a Node from elsewhere (e.g. NodeSource's nodejs, which bundles its own
# npm and conflicts with Debian's) stays as it is.
NODE_DEBS = nodejs npm

# The dashboard test's browser (Debian's chromium, driven by puppeteer-core): for the tests only,
# installed with the rest (one apt-get update) when a test target asks for the packages.
TEST_DEBS = chromium
test test-normal test-asan: WITH_TEST_DEBS = 1

deps:
	@missing=$$(for p in $(DEBS) $(if $(WITH_TEST_DEBS),$(TEST_DEBS)); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$(NODE_DEBS)" ] && ! command -v npm >/dev/null 2>&1; then missing="$$missing $(NODE_DEBS)"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Every test: the suite on the normal build, the same suite with ASan + UBSan on every binary
# (the mock server included), and each libFuzzer target for 20 s.
test: test-normal test-asan test-fuzz

test-normal: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# One clang build (the `asan` preset) serves both: the suite with ASan + UBSan, and the fuzz
# targets (already built by test-asan when both run).
test-asan: deps
	cmake --preset asan >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) -E '^fuzz\.'

test-fuzz: deps
	cmake --preset asan >/dev/null
	cmake --build build-asan -j $(JOBS) --target $(FUZZ_TARGETS)
	cd build-asan && ctest --output-on-failure -j $(JOBS) -R '^fuzz\.'


# Not part of `make test` (reported in notes): the suite under ThreadSanitizer.
test-tsan: deps
	cmake --preset tsan >/dev/null
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && ctest --output-on-failure -j $(JOBS)

# The C++ sources in .clang-format's style (clang-format 14, installed if missing).
FORMATTED = 'lib/*.cpp' 'lib/*.hpp' 'cli/*.cpp' 'cli/*.hpp' 'mock/*.cpp' 'mock/*.hpp' 'monitor/*.cpp' 'top/*.cpp' 'top/*.hpp' \
            'tests/unit/*.cpp' 'tests/unit/*.hpp' 'tests/fuzz/*.cpp' 'tests/bench/*.cpp'
format:
	@$(MAKE) -s deps DEBS=clang-format-14 NODE_DEBS=
	clang-format-14 -i $$(git ls-files $(FORMATTED))

# Not part of `make test`: llmctl next to pm2, supervisor and the physical floor (docs/BENCHMARKS.md).
bench: deps
	bash tests/bench/bench.sh

demo: build
	@# The embedded default: the built-in config's `echo` model runs the bundled mock server,
	@# in a throwaway state dir so a demo never touches the user's servers.
	@set -e; export LLMCTL_CONFIG= XDG_CONFIG_HOME=/nonexistent LLMCTL_HOME=$$(mktemp -d)/state; \
	  L=$(BUILD)/bin/llmctl; \
	  echo '$$ llmctl config check'; $$L config check; \
	  echo '$$ llmctl start echo'; url=$$($$L start echo); echo "$$url"; \
	  echo '$$ llmctl chat echo "hello"'; $$L chat echo "hello"; \
	  echo '$$ llmctl ps'; $$L ps; \
	  echo '$$ llmctl logs echo -n 5'; $$L logs echo -n 5; \
	  echo '$$ llmctl stop echo'; $$L stop echo; \
	  $$L ps

clean:
	rm -rf $(BUILD) build-asan build-tsan
