# Insights developer commands. `make run` and `make test` work on a fresh
# machine: they create .venv and install the project into it when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 3000

# Deployment tools, each in its own environment under $(TOOLS) (git-ignored),
# not in the dev extra: the SAM CLI is ~350 MB, and checkov pins boto3 to a
# version older than the project's (pip would downgrade it or backtrack to an
# old checkov). `make test` never installs them.
# Defined before the rules: make reads a rule's prerequisites as it meets it.
TOOLS ?= .tools
SAM_VERSION ?= 1.170.0
CHECKOV_VERSION ?= 3.3.30
SAM := $(TOOLS)/sam/bin/sam
CHECKOV := $(TOOLS)/checkov/bin/checkov

.PHONY: run test lint install demo bench clean clean-tools sam build deploy console console-update idp

$(BIN)/insights: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/insights

run: install console  ## the whole service on http://127.0.0.1:$(PORT)
	$(BIN)/insights serve --port $(PORT)

# One worker more than cores: the end-to-end tests wait on browsers and served
# stacks, and on 2 cores 3 workers take 4.5 minutes where 2 took 5.3.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print((os.cpu_count() or 1) + 1)')

test: install console  ## unit, integration (moto) and end-to-end tests
	$(BIN)/pytest -n $(TEST_WORKERS)

# The console's Preact and htm are committed (static/vendor-*.mjs, and their
# npm tarballs in console/packages/): this checks them against the hashes
# console/package-lock.json pins, with Python alone. docs/console.md.
console: install  ## check the console's vendored modules against the lock
	$(BIN)/python -m tools.console_vendor

# After `npm install preact@x --package-lock-only` in console/: npm pack the
# newly locked versions, check them against the lock, rewrite the modules.
console-update: install  ## vendor the versions console/package-lock.json pins (needs npm)
	$(BIN)/python -m tools.console_vendor --update

# The console's sign-in through a real OIDC provider on this machine
# (oidc-provider-mock, the dev extra): docs/console.md, "Team".
idp: install  ## an OIDC provider for the console's team sign-in (`make run` first)
	$(BIN)/insights team local-idp

demo: install  ## realistic traffic against the running stack (`make run` first)
	$(BIN)/insights demo

bench: install  ## benchmark suite (issue 6): table, benchmarks/results.json, benchmarks/RESULTS.md
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

lint: install $(CHECKOV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation --file template.yaml
	@if [ -x $(SAM) ]; then $(SAM) validate --lint; \
	else echo "sam validate --lint skipped: \`make sam\` installs the SAM CLI into $(TOOLS)/sam"; fi

$(SAM):
	$(PYTHON) -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install --quiet --upgrade pip
	$(TOOLS)/sam/bin/pip install --quiet 'aws-sam-cli==$(SAM_VERSION)'

$(CHECKOV):
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install --quiet --upgrade pip
	$(TOOLS)/checkov/bin/pip install --quiet 'checkov==$(CHECKOV_VERSION)'

sam: $(SAM)  ## the SAM CLI in $(TOOLS)/sam (~350 MB, about a minute)

# sam build, then tools/check_build.py on .aws-sam/build: non-empty artifacts,
# aarch64-only native code, cpython-313 bytecode when a python3.13 exists
# (found on PATH or in pyenv and passed to the layer build), layer size.
build: install console $(SAM)  ## build for Lambda and check the artifacts
	BYTECODE_PYTHON="$${BYTECODE_PYTHON:-$$($(BIN)/python -m tools.check_build --find-python)}" \
		$(SAM) build
	$(BIN)/python -m tools.check_build

deploy: build  ## deploy with samconfig.toml (DEPLOY_ARGS="--parameter-overrides ..." to change)
	$(SAM) deploy $(DEPLOY_ARGS)

clean:
	rm -rf $(VENV) .insights .aws-sam .pytest_cache .ruff_cache

clean-tools:
	rm -rf $(TOOLS)
