# Two commands are the contract: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The browser test drives Debian's Chromium (a browser downloaded by a tool cannot be had here).
CHROMIUM ?= /usr/bin/chromium
PIP_NET := --retries 10 --resume-retries 20 --timeout 60
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run ingest test check lint browser eval-check bench reliability soak clean FORCE

# The embedded LLM's llama.cpp build (install/llama_wheel.py). `portable`: the baseline that
# bot/models/cpu.py states (x86-64-v3: AVX2, FMA, F16C, BMI2; Armv8-A on aarch64), for any such
# CPU; `native-no-amx`: every instruction of this CPU but AMX (faster, runs on this CPU only);
# LLAMA_CMAKE_ARGS: any other CMake options instead. A wheel is built once per version and
# options and kept in ~/.cache/newsqa/wheels.
LLAMA_BUILD ?= portable
LLAMA_CMAKE_ARGS ?=
LLAMA_CHOICE := $(VENV)/.llama-build

# rewritten only when the choice changes, so that the install runs again then
$(LLAMA_CHOICE): FORCE
	@mkdir -p $(VENV)
	@echo '$(LLAMA_BUILD) $(LLAMA_CMAKE_ARGS)' | cmp -s - $@ || echo '$(LLAMA_BUILD) $(LLAMA_CMAKE_ARGS)' > $@

$(STAMP): pyproject.toml install/llama_wheel.py bot/models/cpu.py $(LLAMA_CHOICE)
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found; set PYTHON=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# The venv's own pip predates --resume-retries: it only upgrades pip.
	@$(PY) -m pip install --quiet --retries 10 --timeout 60 --upgrade pip
	@# llama-cpp-python first, from the wheelhouse (built there if it is not): pip's own cache
	@# may hold a wheel built for another CPU, and --only-binary below keeps pip from building one.
	@LLAMA_BUILD='$(LLAMA_BUILD)' LLAMA_CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' $(PY) -m install.llama_wheel
	@# A registry download can drop mid-file: pip resumes it, and the whole install is tried three
	@# times (what was downloaded stays in pip's cache, so a retry costs only what failed).
	@for try in 1 2 3; do \
		$(PY) -m pip install --quiet $(PIP_NET) --only-binary llama-cpp-python -e ".[dev]" && exit 0; \
		echo ">> pip install failed (attempt $$try of 3)"; sleep $$((try * 10)); \
	done; exit 1
	@# load the model, read ~100 tokens, write 8, in a process of its own: a build this CPU
	@# refuses fails here, with what to do, and not in the middle of `make run` or `make test`
	@$(PY) -m bot.models.selftest
	@touch $(STAMP)

install: $(STAMP)

ingest: install
	$(PY) -m ingest

run: install
	$(PY) app.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

$(CHROMIUM):
	@echo ">> Installing Debian's chromium and chromium-driver for the browser test (once)."
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

browser: $(CHROMIUM)

# The dev questions, retrieval only (no LLM, ~10 s), must keep these figures (README: Evaluation).
eval-check: install
	rm -rf .eval/dev-retrieval
	$(PY) -m eval --questions eval/questions/dev.jsonl --out .eval/dev-retrieval --retrieval-only \
		--quiet --fail-under gold_hit@k=0.7 gold_mrr=0.5 doc_hit@k=0.8

bench: install
	$(PY) -m eval.bench --out bench.json

# Reliability and security only (marker `reliability`; part of `make test` too): figures in
# .soak/report.json.
reliability: install browser
	CHROMIUM=$(CHROMIUM) $(VENV)/bin/pytest -m reliability

soak: reliability

# The fast loop while developing (a few minutes): lint, types and the tests that start no app,
# server, browser or LLM process and take no more than a few seconds (marker `slow` left out).
# CI runs `make test`.
check: lint
	$(VENV)/bin/pytest -q -m "not slow"

test: lint browser eval-check
	CHROMIUM=$(CHROMIUM) $(VENV)/bin/pytest --durations=30

clean:
	rm -rf $(VENV) data/index .eval .soak .pytest_cache .mypy_cache .ruff_cache
