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

.PHONY: lab test voila check lint typecheck pytest bench system-deps venv clean help

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

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check mtlslab tests benchmarks tools .ci
	$(BIN)/ruff format --check mtlslab tests benchmarks tools .ci

typecheck: $(VENV)/.stamp-dev
	$(BIN)/mypy

pytest: $(VENV)/.stamp-dev
	$(PY) -m pytest $(PYTEST_ARGS)

test: system-deps $(VENV)/.stamp-dev
	$(MAKE) --no-print-directory lint typecheck pytest

bench: $(VENV)/.stamp-dev
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis tests/artifacts
