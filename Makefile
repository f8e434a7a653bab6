# mtlslab: the two quick-start commands are `make lab` and `make test` (see README.md).
# Everything lives in .venv; nothing is installed into the system Python.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
HOST   ?= 127.0.0.1
# PORT chooses the port of either server; by default JupyterLab takes 8888 and the Voila app 8866, so both
# can run at once.
PORT   ?=
# JupyterLab refuses to run as root unless told; the brief's machines run as root.
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
DEBIAN_PACKAGES := chromium haproxy curl openssl

.PHONY: lab test voila check lint typecheck pytest bench system-deps node-deps venv clean help

help:
	@echo "make lab     set everything up and open JupyterLab on notebooks/ (port 8888)"
	@echo "make test    set everything up and run every check (ruff, mypy --strict, pytest incl. notebooks)"
	@echo "make voila   the explorer as a web app for workshop rooms (Voila, port 8866)"
	@echo "make bench   the benchmark script (ratios against baselines measured in the same run)"

$(PY):
	$(PYTHON) .ci/make_venv.py $(VENV)

# Re-install when the project's metadata changes; the stamp records what was installed.
$(VENV)/.stamp-notebook: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[notebook]'
	touch $@

$(VENV)/.stamp-dev: pyproject.toml $(VENV)/.stamp-notebook
	$(PY) -m pip install --quiet -e '.[dev,notebook]'
	touch $@

venv: $(VENV)/.stamp-dev

lab: $(VENV)/.stamp-notebook
	$(BIN)/jupyter lab --ServerApp.ip=$(HOST) --ServerApp.port=$(or $(PORT),8888) --notebook-dir=notebooks $(ROOT_FLAG)

voila: $(VENV)/.stamp-notebook
	$(BIN)/voila notebooks/explorer-app.ipynb --Voila.ip=$(HOST) --port=$(or $(PORT),8866) --no-browser \
		--theme=light --show_tracebacks=True

# Debian packages the tests use (the browser test's chromium, HAProxy for the proxied live scenarios,
# curl for the terminal test). Installed only when we are root on Debian; otherwise a hint, and the
# tests that need them skip locally (under CI=true they fail instead of skipping).
system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "note: Debian packages missing:$$missing (sudo make system-deps); the tests that need them will skip"; \
	fi

# The real third-party resource servers the tests probe (tests/thirdparty/: auth0's express-oauth2-jwt-bearer
# and node-oidc-provider, pinned by package-lock.json). Node.js and npm come from Debian when they are missing
# (installing Debian's npm beside a nodesource nodejs, which ships its own npm, would conflict); then `npm ci`
# runs whenever the lock file is newer than the installed tree. Without them the tests that need them skip
# locally and fail under CI=true.
THIRDPARTY := tests/thirdparty
node-deps: $(THIRDPARTY)/node_modules/.package-lock.json

$(THIRDPARTY)/node_modules/.package-lock.json: $(THIRDPARTY)/package.json $(THIRDPARTY)/package-lock.json
	@for tool in node npm; do \
		command -v $$tool >/dev/null && continue; \
		pkg=$$tool; [ $$tool = node ] && pkg=nodejs; \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing Debian package $$pkg"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkg >/dev/null; \
		fi; \
	done
	@! command -v node >/dev/null || \
		node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a==20&&b>=12)?0:1)' || \
		echo "note: Node.js $$(node --version) is older than 20.12, which node-oidc-provider 9 needs (Debian 12 \
	ships 18, Debian 13 20.19): the third-party tests will skip (fail under CI)"
	@if command -v npm >/dev/null; then \
		npm ci --prefix $(THIRDPARTY) --no-audit --no-fund --loglevel=error || \
		echo "note: npm ci failed in $(THIRDPARTY); the tests that need it will skip (fail under CI)"; \
	else \
		echo "note: Node.js/npm missing (sudo make node-deps); the tests that need them will skip"; \
	fi

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check mtlslab tests benchmarks tools .ci
	$(BIN)/ruff format --check mtlslab tests benchmarks tools .ci

typecheck: $(VENV)/.stamp-dev
	$(BIN)/mypy

pytest: $(VENV)/.stamp-dev
	$(PY) -m pytest $(PYTEST_ARGS)

test: system-deps node-deps $(VENV)/.stamp-dev
	$(MAKE) --no-print-directory lint typecheck pytest

bench: $(VENV)/.stamp-dev
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis tests/artifacts
