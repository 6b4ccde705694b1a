# The two commands a new machine needs: `make run` and `make test`. Each creates .venv and installs first:
# `run` the runtime only, `test` the test toolchain (pytest, Playwright, moto, ruff...) on top of it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
# One stamp per layer, so `make run` after `make test` installs nothing and `make test` after `make run`
# installs only the test extra. Both are redone when pyproject.toml changes.
RUNTIME := $(VENV)/.installed-runtime
TESTKIT := $(VENV)/.installed-test

.PHONY: run test check lint bench clean

$(RUNTIME): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e .
	@touch $@

# The test extra's requirements alone: `pip install -e '.[test]'` would build and reinstall the package too.
$(TESTKIT): $(RUNTIME)
	$(BIN)/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['test']))" > $(VENV)/test-requirements.txt
	$(PIP) install -r $(VENV)/test-requirements.txt
	@touch $@

run: $(RUNTIME)
	$(BIN)/mediabot run

# The suite on TEST_WORKERS pytest-xdist processes; the tests of the "serial" group (drills, browser, timed
# tests: see tests/support/groups.py) share one of them. `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 3

test: $(TESTKIT)
	./scripts/system-deps
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

lint: $(TESTKIT)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: $(TESTKIT)
	$(BIN)/python bench/core_bench.py

clean:
	rm -rf $(VENV) .pytest_cache
