PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test

.PHONY: demo test test-stats test-slow lint typecheck bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(TESTSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@ $(STAMP)

# Exit 1 (breached) and 3 (inconclusive) are verdicts, not failures of the demo.
demo: $(STAMP)
	@$(BIN)/harness run suites/demo.yaml --target sim; code=$$?; [ $$code -le 3 ] || exit $$code

test: $(TESTSTAMP)
	$(BIN)/python -m pytest

test-stats: $(TESTSTAMP)
	$(BIN)/python -m pytest -m slow tests/stats -q

test-slow: $(TESTSTAMP)
	$(BIN)/python -m pytest -m slow -q

lint: $(TESTSTAMP)
	$(BIN)/ruff check harness tests bench
	$(BIN)/mypy --strict harness

bench: $(STAMP)
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) build *.egg-info
