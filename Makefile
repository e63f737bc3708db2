# kdrec: the two set-up commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# A plain `torch` requirement would pull a multi-GB CUDA build: install the CPU build first.
TORCH  ?= torch==2.13.0

.PHONY: venv demo test lint browser bench-quality bench-stream clean help

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(STAMP)  ## Create .venv with torch (CPU) and kdrec installed

demo: venv  ## Run the main job on embedded defaults
	$(BIN)/kdrec demo

test: venv browser lint  ## Lint and type-check, then run the whole test suite
	$(BIN)/python -m pytest

lint: venv  ## ruff (lint + format check) and mypy on the packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Headless Chromium for the app's browser test. Never fails the build: installed with apt-get
# when missing and possible (Debian/Ubuntu, as root), otherwise that one test is skipped.
browser:  ## Install chromium + chromium-driver for the browser test when missing (best effort)
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium and chromium-driver for the browser test (apt-get)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
	    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; } \
	    || echo "could not install chromium; the browser test will be skipped"; \
	else \
	  echo "chromium/chromedriver not found and apt-get is unavailable or not root: the browser test will be skipped"; \
	fi

bench-quality: venv  ## Quality benchmark (DATASET=ml-1m|amazon-toys, PROFILE=cpu|full)
	$(BIN)/python -m bench.quality --profile $(or $(PROFILE),cpu) --dataset $(or $(DATASET),ml-1m)

bench-stream: venv  ## Streaming throughput and latency benchmark
	$(BIN)/python -m bench.stream

clean:  ## Remove the venv and local state
	rm -rf $(VENV) var
