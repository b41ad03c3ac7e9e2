# Queqiao — the two set-up commands are `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Rebuild the environment whenever the package definition or a kernel changes.
STAMP  := $(VENV)/.queqiao-installed
DEPS   := pyproject.toml setup.py $(wildcard cython_ext/*.pyx cython_ext/*.pxd)
PYTEST := $(BIN)/pytest -p no:cacheprovider

.PHONY: demo test test-compiled test-pure bench venv system-deps clean docs

venv: $(STAMP)

$(STAMP): $(DEPS) scripts/bootstrap-venv.sh
	PYTHON=$(PYTHON) scripts/bootstrap-venv.sh test
	touch $@

system-deps:
	scripts/ensure-system-deps.sh

## The main job: the ground-station daemon with an embedded emulator (see README).
demo: venv
	$(BIN)/groundstation demo

## Every test, then the wire-format tests again on the pure-Python kernels.
test: venv system-deps test-compiled test-pure

test-compiled: venv
	$(PYTEST) -q tests

test-pure: venv
	QUEQIAO_PURE_PYTHON=1 $(PYTEST) -q -m protocols tests

## Every benchmark; each updates its own part of docs/PERFORMANCE.md.
bench: venv
	$(BIN)/python -m benchmarks --write docs/PERFORMANCE.md
	$(BIN)/python -m benchmarks.flood --write docs/PERFORMANCE.md
	$(BIN)/python -m benchmarks.ingest --write docs/PERFORMANCE.md
	$(BIN)/python -m benchmarks.rs --write docs/PERFORMANCE.md
	$(BIN)/python -m benchmarks.history --write docs/PERFORMANCE.md

clean:
	rm -rf $(VENV) build *.egg-info cython_ext/*.c cython_ext/*.so

## arm64 check (root; heavy: debootstrap + qemu, ~10 min cold, ~1.5 min warm): the board install
## and a short emulator run in an arm64 Debian rootfs, its frames decoded here. See docs/ARM-CHECK.md.
.PHONY: arm-check
arm-check: venv
	@if [ "$$(id -u)" = 0 ]; then deploy/board/arm-check.sh $(ARM_CHECK_ARGS); \
	else echo "arm-check needs root: sudo"; sudo deploy/board/arm-check.sh $(ARM_CHECK_ARGS); fi
