# chainabs: `make run` (the demo on the embedded chain) and `make test` (the whole suite) set
# themselves up; every other target is optional.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP_PY  := $(VENV)/.installed
STAMP_NPM := node_modules/.installed
STAMP_CHROMIUM := $(VENV)/.chromium
PYTEST_ARGS ?=

.PHONY: setup run test lint build node soak bench clean

setup: $(STAMP_PY) $(STAMP_NPM) $(STAMP_CHROMIUM)

$(STAMP_PY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $@

$(STAMP_NPM): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The portal's browser tests drive Debian's chromium through Playwright (never a browser download).
$(STAMP_CHROMIUM): $(STAMP_PY)
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	touch $@

run: setup
	$(BIN)/chainabs demo

test: setup lint
	$(BIN)/pytest $(PYTEST_ARGS)

# ruff over src, scripts and tests; strict mypy over src and scripts (settings in pyproject.toml)
lint: setup
	$(BIN)/ruff check
	$(BIN)/mypy

build: setup
	$(BIN)/chainabs build

# the block gas limit and history pruning of chainabs.chain.anvil (ANVIL_GAS_LIMIT, PRUNE_HISTORY_STATES)
node: setup
	node_modules/.bin/anvil --host 127.0.0.1 --port 8545 --gas-limit 150000000 --prune-history 64

# the deal's stateful invariants at length (>= 200 examples x 50 steps); prints the counts at the end
soak: setup
	CHAINABS_SOAK=1 $(BIN)/pytest tests/contracts/test_invariants.py -s -q

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis
