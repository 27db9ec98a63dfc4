# Two commands are the contract: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The browser test drives Debian's Chromium (a browser downloaded by a tool cannot be had here).
CHROMIUM ?= /usr/bin/chromium
PIP_NET := --retries 10 --resume-retries 20 --timeout 60
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run ingest test check lint browser eval-check bench soak clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found; set PYTHON=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# The venv's own pip predates --resume-retries: it only upgrades pip.
	@$(PY) -m pip install --quiet --retries 10 --timeout 60 --upgrade pip
	@$(PY) -c "import llama_cpp" 2>/dev/null || echo ">> Building llama-cpp-python from source: about 6 minutes on 2 cores, once (pip caches the wheel)."
	@# A registry download can drop mid-file: pip resumes it, and the whole install is tried three
	@# times (what was downloaded or built stays in pip's cache, so a retry costs only what failed).
	@for try in 1 2 3; do \
		CMAKE_ARGS="-DLLAVA_BUILD=OFF" $(PY) -m pip install --quiet $(PIP_NET) -e ".[dev]" && exit 0; \
		echo ">> pip install failed (attempt $$try of 3)"; sleep $$((try * 10)); \
	done; exit 1
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

# Reliability and security only (marker `soak`; part of `make test` too): figures in .soak/report.json.
soak: install browser
	CHROMIUM=$(CHROMIUM) $(VENV)/bin/pytest -m soak

# The fast loop while developing (a few minutes): lint, types and the tests that start no app,
# server, browser or LLM process (markers `system` and `soak` left out). CI runs `make test`.
check: lint
	$(VENV)/bin/pytest -q -m "not system and not soak"

test: lint browser eval-check
	CHROMIUM=$(CHROMIUM) $(VENV)/bin/pytest

clean:
	rm -rf $(VENV) data/index .eval .soak .pytest_cache .mypy_cache .ruff_cache
