# TEE Prover — the user commands.  `make run` and `make test` do all the set-up
# on a fresh machine: a .venv with the pinned dependencies, generated protobuf
# code and the Envoy descriptor set.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
GEN := teeprover/v1
DESCRIPTOR := build/teeprover.pb
PROTOS := $(wildcard protos/teeprover/v1/*.proto)

.PHONY: run test test-slow bench bench-large lint protos setup clean fuzz audit k8s-config deploy-tools deploy-check

setup: $(STAMP) $(DESCRIPTOR)

# Re-install only when pyproject.toml changes (idempotent: a second run installs nothing).
$(STAMP): pyproject.toml setup.py teeprover/_native.c
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

protos: $(DESCRIPTOR)

$(DESCRIPTOR): $(PROTOS) $(STAMP)
	@mkdir -p build $(GEN)
	$(PY) -m teeprover._protoc
	@touch $(DESCRIPTOR)

# The embedded default runs with a simulated TEE unless told otherwise.
run: setup
	TEEPROVER_PLATFORM=$${TEEPROVER_PLATFORM:-simulated} $(VENV)/bin/teeprover serve all

test: setup deploy-tools
	$(PY) -m pytest -q -m "not slow" --cov --cov-report=term

# pytest exits 5 when it selects no test: no slow test is not a failure.
test-slow: setup
	$(PY) -m pytest -q -m slow; rc=$$?; if [ $$rc -eq 5 ]; then echo "no slow tests selected"; exit 0; fi; exit $$rc

bench: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(PY) -m bench.run $(BENCH_ARGS)

# k = 20 (or LARGE_K) without circom: circom2's compile and snarkjs's setup take an hour there.
LARGE_K ?= 20
bench-large: setup
	$(PY) -m bench.large --k $(LARGE_K) $(BENCH_LARGE_ARGS)

# Midnight's real circuits: the corpus table (docs/zkir.md) and whole REST requests for the zswap
# built-in keys with wallet preimages (docs/benchmarks.md). The first run sets up keys up to k = 19.
.PHONY: bench-midnight
bench-midnight: setup
	$(PY) -m bench.midnight $(BENCH_MIDNIGHT_ARGS)

FUZZ_ARGS ?= --examples 100000 --jobs 2

fuzz: setup
	$(PY) -m tests.fuzz.run_all $(FUZZ_ARGS)

lint: setup
	$(VENV)/bin/ruff check teeprover services tests bench
	$(VENV)/bin/mypy teeprover services tests bench

audit: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,audit]'
	$(PY) -m tests.support.audit

k8s-config: setup
	$(PY) -m services.gateway.k8s

clean:
	rm -rf build $(GEN) .pytest_cache .mypy_cache .ruff_cache

# checkov (tests/deploy checks the manifests and Dockerfiles with it) lives in its own venv: its
# dependency pins clash with ours (deploy/tools/checkov-requirements.txt says which).
TOOLS_VENV := .venv-tools
CHECKOV := $(TOOLS_VENV)/bin/checkov
deploy-tools: $(CHECKOV)

$(CHECKOV): deploy/tools/checkov-requirements.txt
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --disable-pip-version-check -r deploy/tools/checkov-requirements.txt
	@touch $(CHECKOV)

# Just the deploy checks: kustomize build + schema validation + checkov of every overlay, Envoy validation.
deploy-check: setup deploy-tools
	$(PY) -m pytest -q tests/deploy tests/unit/test_deploy.py

# The specification's load plan, scaled to 2 cores (docs/loadtest.md): sustained, spike, stress through Envoy
# with Locust (headless); every proof verified by the client. Report and plot in bench/results/.
.PHONY: loadtest fuzz-atheris
LOADTEST_ARGS ?=
loadtest: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,loadtest]'
	$(PY) -m bench.loadtest $(LOADTEST_ARGS)

# Coverage-guided fuzzing (atheris) of the CBOR, ZKIR and preimage decoders: ATHERIS_RUNS inputs per target.
ATHERIS_RUNS ?= 100000
fuzz-atheris: setup
	$(PY) -m tests.fuzz.atheris_run --runs $(ATHERIS_RUNS)

# A bare `teeprover` on your PATH: links the virtual environment's command into BINDIR (default ~/.local/bin).
.PHONY: install
BINDIR ?= $(HOME)/.local/bin
install:
	@test -x .venv/bin/teeprover || { echo "no .venv/bin/teeprover yet: run \`make run\` (or \`make setup\`) first"; exit 1; }
	@mkdir -p "$(BINDIR)"
	ln -sf "$(CURDIR)/.venv/bin/teeprover" "$(BINDIR)/teeprover"
	@echo "teeprover -> $(BINDIR)/teeprover (make sure $(BINDIR) is on your PATH)"
