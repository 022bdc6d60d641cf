# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
PORT ?= 8000

.PHONY: run test check lint typecheck layers pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev: requirements-dev.lock $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.lock
	touch $@

run: $(VENV)/.runtime
	$(BIN)/modelyard --data-dir $(DATA_DIR) serve --port $(PORT)

check: $(VENV)/.dev lint typecheck layers

lint:
	$(BIN)/ruff check src tests bench

typecheck:
	$(BIN)/mypy

layers:
	$(BIN)/lint-imports

# axe-core (accessibility checks of the browser tests) from npm, beside the venv.
AXE := $(VENV)/axe/node_modules/axe-core/axe.min.js
$(AXE):
	npm install --silent --no-audit --no-fund --prefix $(VENV)/axe axe-core@4.14.1

# oidc-provider (a real OpenID provider for the sign-in tests, tests/web/test_oidc.py) from npm.
OIDC := $(VENV)/oidc/node_modules/oidc-provider/package.json
$(OIDC):
	npm install --silent --no-audit --no-fund --prefix $(VENV)/oidc oidc-provider@9.13.3

pytest: $(VENV)/.dev $(AXE) $(OIDC)
	$(BIN)/pytest $(PYTEST_ARGS)

test: check pytest

bench: $(VENV)/.dev
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
