# Insights developer commands. `make run` and `make test` work on a fresh
# machine: they create .venv and install the project into it when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 3000

.PHONY: run test lint install demo bench clean

$(BIN)/insights: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/insights

run: install  ## the whole service on http://127.0.0.1:$(PORT)
	$(BIN)/insights serve --port $(PORT)

test: install  ## unit, integration (moto) and end-to-end tests
	$(BIN)/pytest -n auto

demo: install  ## realistic traffic against the running stack (`make run` first)
	$(BIN)/insights demo

bench: install  ## benchmark suite (issue 6): table, benchmarks/results.json, benchmarks/RESULTS.md
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml

clean:
	rm -rf $(VENV) .insights .aws-sam .pytest_cache .ruff_cache
