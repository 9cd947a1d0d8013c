# flinkmem — developer entry points. `make demo` and `make test` are the two a new user needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Everything downloaded or built (Flink jars, control-plane binaries) lives outside the repo.
FLINKMEM_CACHE ?= $(HOME)/.cache/flinkmem
export FLINKMEM_CACHE

.PHONY: help install lint native-lint typecheck imports docs flink check test test-unit test-differential bench \
	profile-reviews clean

# Every target with a `## ` comment, from this file and mk/*.mk.
help: ## list every target
	@echo "make demo and make test are all a new user needs; the rest is for development (docs/development.md)."
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "  make %-17s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

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

install: $(VENV)/.installed $(FASTPATH) ## the venv (.venv) with flinkmem and its test tools, and the native fast path

lint: install native-lint typecheck imports docs ## ruff, mypy, the import contracts, the docs site and the Rust lints
	$(VENV)/bin/ruff check operator localplane tests benchmarks examples
	$(VENV)/bin/ruff format --check operator localplane tests benchmarks examples

native-lint: install ## cargo fmt and clippy on native/
	cd native && $(CARGO) fmt --check && PYO3_PYTHON=$(abspath $(PY)) $(CARGO) clippy --release --locked --quiet -- -D warnings

typecheck: install ## mypy --strict over the package, tests, benchmarks and examples
	$(VENV)/bin/mypy

# The layer contracts of pyproject.toml's [tool.importlinter]: an import that breaks a layer fails here.
imports: install ## check the package's layers (import-linter)
	cd operator && ../$(VENV)/bin/lint-imports --config ../pyproject.toml

# The docs site (mkdocs.yml), built with every link and anchor checked (not --quiet: it would hide the
# warnings that strict mode counts); the site itself is thrown away.
docs: install ## build the docs site strictly (broken links and anchors fail)
	@site=$$(mktemp -d) && trap 'rm -rf "$$site"' EXIT && \
	  out=$$($(VENV)/bin/mkdocs build --strict --site-dir "$$site" 2>&1) || { echo "$$out" >&2; exit 1; }

# Real Flink from PyPI, the referee of the differential tests: 1.20.3 and 2.3.0 complete (jars and bin/
# scripts), and the jars of the newest patch of every other supported line (about 20 s and 250 MB
# downloaded each, 100-190 MB kept).
flink: install ## download real Flink from PyPI into the cache
	$(PY) -m tests.support.flinkdist ensure
	$(PY) -m tests.support.flinkdist ensure --supported --jars-only

test-unit: install ## the unit tests alone
	$(PY) -m pytest tests/unit -q

test-differential: install flink ## flinkmem against real Flink (needs Java 17)
	$(PY) -m pytest tests/differential -q

# The edit-test loop: no root, no Go, no control plane; real Flink and Java only.
check: lint test-unit test-differential ## the fast tier: lint, unit and differential tests

test: lint flink tools ## everything: lint and the whole test suite (installs what it needs)
	@bash hack/image.sh --if-possible >/dev/null
	$(PY) -m pytest -q

# The webhook and scale benchmarks build their Go no-op webhook and load generator (benchmarks/noop,
# benchmarks/loadgen) into $(FLINKMEM_CACHE)/bench; the control-plane binaries come from `make tools`.
bench: install flink tools ## the benchmarks, each against its baseline (prints figures)
	$(PY) benchmarks/run.py
	$(PY) benchmarks/webhook.py
	$(PY) benchmarks/review_parts.py
	$(PY) benchmarks/scale.py

# Where a review's CPU goes: kopf's admission engine against our decisions in one process, and py-spy
# (from PyPI, into the cache) on a running `flinkmem serve` for each review kind.
profile-reviews: install tools ## where a review's CPU goes (kopf's engine in process, py-spy on a server)
	$(PY) benchmarks/review_parts.py
	$(PY) benchmarks/profile_reviews.py

clean: ## remove the venv, caches of the linters and the built fast path
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(FASTPATH)

-include mk/*.mk

# Runs flinkmem in the foreground against .cluster/kubeconfig (or $KUBECONFIG) for local development:
# a generated CA, URL-registered webhooks on 127.0.0.1:9443 and the bundled CRD if none is installed.
# On the local plane flinkmem answers only its API server's webhook client certificate (api_server_only).
run: install ## run flinkmem in the foreground against .cluster/kubeconfig (make cluster-up first)
	export KUBECONFIG=$${KUBECONFIG:-$(CURDIR)/.cluster/kubeconfig}; $(VENV)/bin/flinkmem serve \
		--self-signed-dir $(CURDIR)/.cluster/flinkmem-certs --register-url https://127.0.0.1:9443 \
		--bind-address 127.0.0.1 --install-crd \
		$$($(PY) -c 'import sys, pathlib, localplane.serve as s; print(*s.api_server_only(pathlib.Path(sys.argv[1])))' "$$KUBECONFIG")

# The README's main command: control plane up, flinkmem running, examples/ applied and explained.
demo: tools install ## a local control plane, flinkmem running, examples/ applied and explained (KEEP=1 keeps it up)
	@$(PY) -m localplane up
	@status=0; $(PY) examples/demo.py || status=$$?; \
	if [ "$(KEEP)" != "1" ]; then $(PY) -m localplane down; fi; exit $$status
