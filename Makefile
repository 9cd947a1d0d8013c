# flinkmem — developer entry points. `make demo` and `make test` are the two a new user needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Everything downloaded or built (Flink jars, control-plane binaries) lives outside the repo.
FLINKMEM_CACHE ?= $(HOME)/.cache/flinkmem
export FLINKMEM_CACHE

.PHONY: help install lint native-lint typecheck flink test test-unit bench profile-reviews clean

help:
	@echo "make demo   - bring up a local control plane, run flinkmem, apply examples/ (KEEP=1 keeps it up)"
	@echo "make test   - install everything needed and run lint, type checks and the whole test suite"
	@echo "make install / lint / flink / tools / image / cluster-up / cluster-down / run / bench"

# The same pinned versions as the container image (requirements.lock, `make lock` refreshes it).
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --constraint requirements.lock -e '.[test]'
	touch $@

# The native fast path of `resolve --batch` (Rust, native/). Without it every line takes the Python
# path, which gives the same answers, about 4 times slower; `make install` always builds it.
# rustup's default place, for shells that did not source ~/.cargo/env.
CARGO ?= $(or $(shell command -v cargo 2>/dev/null),$(wildcard $(HOME)/.cargo/bin/cargo),cargo)
FASTPATH := operator/flinkmem/_fastpath.abi3.so
CARGO_TARGET_DIR ?= $(FLINKMEM_CACHE)/native-target
export CARGO_TARGET_DIR
$(FASTPATH): native/Cargo.toml native/Cargo.lock $(wildcard native/src/*.rs) $(VENV)/.installed
	@command -v $(CARGO) >/dev/null || { echo "make: cargo not found; the batch fast path needs Rust (rustup.rs)" >&2; exit 1; }
	cd native && PYO3_PYTHON=$(abspath $(PY)) $(CARGO) build --release --locked --quiet
	cp $(CARGO_TARGET_DIR)/release/lib_fastpath.so $@

install: $(VENV)/.installed $(FASTPATH)

lint: install native-lint
	$(VENV)/bin/ruff check operator localplane tests benchmarks examples
	$(VENV)/bin/ruff format --check operator localplane tests benchmarks examples

native-lint: install
	cd native && $(CARGO) fmt --check && PYO3_PYTHON=$(abspath $(PY)) $(CARGO) clippy --release --locked --quiet -- -D warnings

typecheck: install
	$(VENV)/bin/mypy

# Real Flink (flink-dist jars and bin/ scripts from PyPI), the referee of the differential tests.
flink: install
	$(PY) -m tests.support.flinkdist ensure

test-unit: install
	$(PY) -m pytest tests/unit -q

test: lint typecheck flink tools image
	$(PY) -m pytest -q

# The webhook and scale benchmarks build their Go no-op webhook and load generator (benchmarks/noop,
# benchmarks/loadgen) into $(FLINKMEM_CACHE)/bench; the control-plane binaries come from `make tools`.
bench: install flink tools
	$(PY) benchmarks/run.py
	$(PY) benchmarks/webhook.py
	$(PY) benchmarks/review_parts.py
	$(PY) benchmarks/scale.py

# Where a review's CPU goes: kopf's admission engine against our decisions in one process, and py-spy
# (from PyPI, into the cache) on a running `flinkmem serve` for each review kind.
profile-reviews: install tools
	$(PY) benchmarks/review_parts.py
	$(PY) benchmarks/profile_reviews.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(FASTPATH)

-include mk/*.mk

# Runs flinkmem in the foreground against .cluster/kubeconfig (or $KUBECONFIG) for local development:
# a generated CA, URL-registered webhooks on 127.0.0.1:9443 and the bundled CRD if none is installed.
run: install
	KUBECONFIG=$${KUBECONFIG:-$(CURDIR)/.cluster/kubeconfig} $(VENV)/bin/flinkmem serve \
		--self-signed-dir $(CURDIR)/.cluster/flinkmem-certs --register-url https://127.0.0.1:9443 \
		--bind-address 127.0.0.1 --install-crd

# The README's main command: control plane up, flinkmem running, examples/ applied and explained.
demo: tools install
	@$(PY) -m localplane up
	@status=0; $(PY) examples/demo.py || status=$$?; \
	if [ "$(KEEP)" != "1" ]; then $(PY) -m localplane down; fi; exit $$status
