# Two front-door commands (see README): `make up` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := postgresql-15 postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl espeak-ng sox nodejs npm chromium
SUPABASE_CLI := .tools/node_modules/.bin/supabase
# The test cluster: OPENDOT_TEST_PG_URL names one you run yourself (never started or
# stopped here); otherwise scripts/test-postgres.sh runs one (OPENDOT_TEST_PGPORT,
# OPENDOT_TEST_PGDATA move it).
TEST_PG_URL := $(or $(OPENDOT_TEST_PG_URL),$(shell scripts/test-postgres.sh url))
# One pgTAP database per checkout when several run against the same cluster.
PGTAP_DB ?= opendot_pgtap

.PHONY: up test venv install-runtime install-dev node console system-deps supabase-cli test-postgres lint typecheck pytest pgtap advisors bench clean

# Debian and Ubuntu ship venv's ensurepip separately (python3-venv): install it
# when the first attempt fails, so `make up` works on a fresh machine.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv >/dev/null && \
	  $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q -U pip

venv: $(BIN)/python

# silero-vad hard-requires torch and pipecat-ai a whole framework, but we only need
# the ONNX model files they ship (Silero VAD; Smart Turn v3.2 for the semantic end
# of turn), so both are installed without dependencies (runtime/pipeline locates them).
SPEECH_MODEL_WHEELS := 'silero-vad>=5.1' 'pipecat-ai>=1.14,<2'
install-runtime: venv
	$(BIN)/pip install -q -e '.[runtime,local,embedded]'
	$(BIN)/pip install -q --no-deps $(SPEECH_MODEL_WHEELS)

install-dev: venv
	$(BIN)/pip install -q -e '.[runtime,local,embedded,azure,dev]'
	$(BIN)/pip install -q --no-deps $(SPEECH_MODEL_WHEELS)

up: install-runtime console
	$(BIN)/opendot up

# The web console (web/): Node from the Debian packages when the machine has none,
# dependencies from the lockfile, and a build only when a source changed.
node:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
	  echo "installing: nodejs npm"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }

WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/package.json \
  web/vite.config.ts web/tsconfig.json functions/openapi.json
web/node_modules/.package-lock.json: web/package-lock.json | node
	cd web && npm ci --no-audit --no-fund --loglevel=error

web/dist/index.html: $(WEB_SOURCES) web/node_modules/.package-lock.json
	cd web && npm run --silent build

console: web/dist/index.html

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then missing=$$(echo $$missing | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' '); fi; \
	  if [ -n "$$(echo $$missing | tr -d ' ')" ]; then \
	    echo "installing:$$missing"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	fi

supabase-cli: $(SUPABASE_CLI)
$(SUPABASE_CLI):
	mkdir -p .tools && cd .tools && npm install --silent --no-audit --no-fund supabase@3 >/dev/null

test-postgres: system-deps
	$(if $(OPENDOT_TEST_PG_URL),@true,scripts/test-postgres.sh start)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev test-postgres console
	OPENDOT_TEST_PG_URL=$(TEST_PG_URL) $(BIN)/pytest -q -p no:cacheprovider

pgtap: install-dev test-postgres
	# A fresh database every run, so pgTAP never tests a stale schema.
	$(BIN)/opendot db reset --yes --no-seed --database-url $(TEST_PG_URL:/postgres=/$(PGTAP_DB))
	PGPASSWORD= pg_prove -h 127.0.0.1 -p $$(echo $(TEST_PG_URL) | sed -E 's#.*:([0-9]+)/.*#\1#') -U postgres -d $(PGTAP_DB) --ext .sql -r supabase/tests

advisors: supabase-cli pgtap
	$(SUPABASE_CLI) db advisors --remote=$(TEST_PG_URL:/postgres=/$(PGTAP_DB)) --type all --fail-on error

# Stops the test cluster afterwards only if this run started it (and nobody else is
# connected): a cluster that was already running, perhaps for another checkout, stays up.
test: system-deps
	$(if $(OPENDOT_TEST_PG_URL),,scripts/test-postgres.sh with) $(MAKE) --no-print-directory lint typecheck pytest pgtap advisors

bench: install-dev test-postgres
	$(BIN)/opendot bench all --database-url $(TEST_PG_URL)

clean:
	rm -rf .tools build dist *.egg-info
