# kdrec: the two set-up commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# A plain `torch` requirement would pull a multi-GB CUDA build: install the CPU build first.
TORCH  ?= torch==2.13.0

.PHONY: venv demo test bench-quality bench-stream clean help

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

test: venv  ## Run the whole test suite
	$(BIN)/python -m pytest

bench-quality: venv  ## Quality benchmark on ML-1M (PROFILE=cpu|full)
	$(BIN)/python -m bench.quality --profile $(or $(PROFILE),cpu)

bench-stream: venv  ## Streaming throughput and latency benchmark
	$(BIN)/python -m bench.stream

clean:  ## Remove the venv and local state
	rm -rf $(VENV) var
