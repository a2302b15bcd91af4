# Two commands: `make test` and `make demo`. Each sets itself up (idempotently) first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLAUDE_CODE_VERSION := 2.1.332
CLI_DIR := .cli
CLAUDE := $(CLI_DIR)/node_modules/.bin/claude
STAMPS := .stamps

.PHONY: setup test demo run lint clean bench

setup: $(STAMPS)/venv $(STAMPS)/cli-$(CLAUDE_CODE_VERSION)

$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	@touch $@

$(STAMPS)/cli-$(CLAUDE_CODE_VERSION):
	@mkdir -p $(STAMPS) $(CLI_DIR)
	@command -v npm >/dev/null || { echo "npm is required to install the Claude Code CLI: install Node.js 18+ (apt-get install nodejs npm)"; exit 1; }
	cd $(CLI_DIR) && npm install --no-audit --no-fund --silent @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)
	$(CLAUDE) --version
	@touch $@

test: setup
	SWITCHBOARD_CLAUDE_BIN=$(abspath $(CLAUDE)) $(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	SWITCHBOARD_CLAUDE_BIN=$(abspath $(CLAUDE)) $(VENV)/bin/switchboard demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy wire supervisor session_worker bot

bench: setup
	SWITCHBOARD_CLAUDE_BIN=$(abspath $(CLAUDE)) $(PY) -m bench

clean:
	rm -rf $(VENV) $(CLI_DIR) $(STAMPS)
