# healthmon — `make run` needs only Python 3.11+; `make test` installs the rest.
# The first interpreter that really runs and is 3.11+ (a pyenv shim may exist without one).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint typecheck js-test system-deps bench bench-quick clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "healthmon needs Python 3.11 or newer: none found on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,rabbitmq,fast,grpc]'
	@touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run  ## start everything: page on http://localhost:4000/
	$(BIN)/python -m healthmon $(ARGS)

system-deps:  ## chromium, rabbitmq-server, postgresql and nodejs for the tests (apt-get where it exists)
	@bash scripts/system-deps.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

test: system-deps $(VENV)/.installed-dev lint typecheck js-test  ## the whole suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

js-test:  ## the client module's unit tests, with Node's own runner (no npm packages)
	node --test tests/js/

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: $(VENV)/.installed-dev
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache artifacts
