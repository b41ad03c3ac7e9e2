# Queqiao — the two set-up commands are `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Rebuild the environment whenever the package definition or a kernel changes.
STAMP  := $(VENV)/.queqiao-installed
DEPS   := pyproject.toml setup.py $(wildcard cython_ext/*.pyx cython_ext/*.pxd)
PYTEST := $(BIN)/pytest -p no:cacheprovider

.PHONY: demo test lint test-compiled test-pure bench venv system-deps clean docs fuzz soak

venv: $(STAMP)

$(STAMP): $(DEPS) scripts/bootstrap-venv.sh
	PYTHON=$(PYTHON) scripts/bootstrap-venv.sh test
	touch $@

system-deps:
	scripts/ensure-system-deps.sh

## The main job: the ground-station daemon with an embedded emulator (see README).
demo: venv
	$(BIN)/groundstation demo

## Every test, then the wire-format tests again on the pure-Python kernels. Each step of
## TEST_STEPS runs even when an earlier one failed; `make test` fails if any did.
TEST_STEPS := lint test-compiled test-pure
test: venv system-deps
	@failed=""; for step in $(TEST_STEPS); do $(MAKE) --no-print-directory $$step || failed="$$failed $$step"; done; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed" >&2; exit 1; fi; echo "make test: passed ($(TEST_STEPS))"

## ruff (rules in pyproject.toml) over every tree, mypy over the four packages: zero findings.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

test-compiled: venv
	$(PYTEST) -q tests

test-pure: venv
	QUEQIAO_PURE_PYTHON=1 $(PYTEST) -q -m protocols tests

## Every benchmark; each updates its own part of docs/PERFORMANCE.md.
bench: venv
	$(BIN)/python -m benchmarks --write docs/PERFORMANCE.md
	$(BIN)/python -m benchmarks.flood --write docs/PERFORMANCE.md
	$(BIN)/python -m benchmarks.ingest --write docs/PERFORMANCE.md
	$(BIN)/python -m benchmarks.ingest --mission tianwen1 --write docs/PERFORMANCE.md
	$(BIN)/python -m benchmarks.rs --write docs/PERFORMANCE.md
	$(BIN)/python -m benchmarks.rs_chain --write docs/PERFORMANCE.md
	$(BIN)/python -m benchmarks.history --write docs/PERFORMANCE.md
	$(BIN)/python -m benchmarks.variable --write docs/PERFORMANCE.md

## The fuzz suite at full size: 40,000 inputs per target, over 10^6 in all (docs/FUZZING.md); `make test` runs it small.
fuzz: venv
	QUEQIAO_FUZZ_PROFILE=long QUEQIAO_FUZZ_REPORT=fuzz-report.json $(PYTEST) -q --timeout=3600 tests/fuzz

## 30 minutes of mixed good and bad input into a real daemon, RSS sampled (not in CI; SOAK_ARGS="--duration 300").
soak: venv
	$(BIN)/python -m benchmarks.soak --write docs/PERFORMANCE.md $(SOAK_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info cython_ext/*.c cython_ext/*.so

## arm64 check (root; heavy: debootstrap + qemu, ~10 min cold, ~1.5 min warm): the board install
## and a short emulator run in an arm64 Debian rootfs, its frames decoded here. See docs/ARM-CHECK.md.
## fresh-check (root; ~15-25 min on 2 cores): `make test` in a freshly debootstrapped minimal Debian (DIST=bookworm
## or trixie) from a clean clone of the committed HEAD. See docs/FRESH-CHECK.md.
DIST ?= bookworm
.PHONY: fresh-check
fresh-check:
	@if [ "$$(id -u)" = 0 ]; then scripts/fresh-check.sh $(DIST); \
	else echo "fresh-check needs root: sudo"; sudo scripts/fresh-check.sh $(DIST); fi

.PHONY: arm-check
arm-check: venv
	@if [ "$$(id -u)" = 0 ]; then deploy/board/arm-check.sh $(ARM_CHECK_ARGS); \
	else echo "arm-check needs root: sudo"; sudo deploy/board/arm-check.sh $(ARM_CHECK_ARGS); fi
