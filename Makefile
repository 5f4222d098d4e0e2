# Two commands: `make run` (set up, load the demo organisation, serve) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

export ACCESSGOV_DATABASE_URL ?= sqlite:///var/accessgov.db

.PHONY: run console test setup lint policy-test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	@touch $@

tests/idp/node_modules/.package-lock.json: tests/idp/package-lock.json
	cd tests/idp && npm ci --no-audit --no-fund --silent

tests/browser/node_modules/.package-lock.json: tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --silent

## Serve the API on embedded SQLite with the demo organisation loaded (development tokens on).
run: setup
	ACCESSGOV_AUTH__DEV_TOKENS=true $(BIN)/accessgov demo --if-empty
	@echo
	@echo "accessgov: http://$(HOST):$(PORT)/docs   token: ACCESSGOV_AUTH__DEV_TOKENS=true $(BIN)/accessgov dev-token"
	@echo
	ACCESSGOV_AUTH__DEV_TOKENS=true $(BIN)/accessgov serve --host $(HOST) --port $(PORT)

## `make run`, plus the console: the test IdP (node, tests/idp) on IDP_PORT and three officers to sign in as.
## Development only: the test IdP's passwords are public.
IDP_PORT ?= 8001
CONSOLE_IDPS = [{"name":"test","display_name":"测试 IdP（tests/idp）","issuer":"http://127.0.0.1:$(IDP_PORT)","client_id":"accessgov-console","client_secret":"accessgov-console-test-secret"}]
console: setup tests/idp/node_modules/.package-lock.json
	ACCESSGOV_AUTH__DEV_TOKENS=true $(BIN)/accessgov demo --if-empty
	ACCESSGOV_AUTH__DEV_TOKENS=true $(BIN)/accessgov demo-officers
	@echo
	@echo "console: http://127.0.0.1:$(PORT)/console/   sign in as sunli (安全管理员), zhouqiang (审计管理员) or wugang (系统管理员); password <login>-test-pw"
	@echo
	node tests/idp/provider.mjs --port $(IDP_PORT) --fixture tests/idp/fixture.json \
	    --console-redirect-uri http://127.0.0.1:$(PORT)/console/auth/callback & idp=$$!; \
	trap 'kill $$idp' EXIT INT TERM; \
	ACCESSGOV_AUTH__DEV_TOKENS=true ACCESSGOV_CONSOLE__BASE_URL=http://127.0.0.1:$(PORT) \
	ACCESSGOV_CONSOLE__IDPS='$(CONSOLE_IDPS)' $(BIN)/accessgov serve --host $(HOST) --port $(PORT)

## The whole test suite: SQLite and PostgreSQL, the real OIDC provider, the policy tables.
test: setup tests/idp/node_modules/.package-lock.json tests/browser/node_modules/.package-lock.json
	$(BIN)/python -m pytest -q

policy-test: setup
	$(BIN)/accessgov policy test

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf var/ .pytest_cache
