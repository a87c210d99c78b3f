# `make run` and `make test` work on a fresh machine with Python 3.11, pip and gcc.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR ?= runs/tag
BUDGET ?= 180

.PHONY: run test test-slow lint format bench docs clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[all,test,docs]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/predprey train --config configs/tag.yaml --out $(RUN_DIR) --time-budget $(BUDGET) --overwrite
	$(BIN)/predprey plot $(RUN_DIR)
	$(BIN)/predprey animate $(RUN_DIR) --env-index 0

test: $(STAMP)
	$(BIN)/pytest -q

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

bench: $(STAMP)
	$(BIN)/predprey bench env
	$(BIN)/predprey bench train

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build site *.egg-info src/*.egg-info
