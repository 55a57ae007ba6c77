# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
#
# The two commands of the README. Both are idempotent and set up everything
# they need (.venv, Odoo 17.0 source, PostgreSQL) on the first run.
# Variables: ODOO_SRC, DB, HTTP_PORT, GEVENT_PORT, PROXY_PORT, WORKERS, PG_PORT, PGHOST...

PYTHON ?= python3
RUFF_VERSION ?= 0.17.6
LINT_VENV := .dev/lint

.PHONY: run test lint pot bootstrap wheel clean

run:  ## multi-worker dev instance behind nginx on http://127.0.0.1:$(PROXY_PORT) (default 8080)
	@$(PYTHON) tools/devenv.py run

test:  ## the whole test suite, ends with "N passed, N failed"
	@$(PYTHON) tools/devenv.py test

lint:  ## ruff with OCA's rules (.ruff.toml) and ruff format, checking only
	@test -x $(LINT_VENV)/bin/ruff && $(LINT_VENV)/bin/ruff --version | grep -qx "ruff $(RUFF_VERSION)" \
		|| { $(PYTHON) -m venv $(LINT_VENV) && $(LINT_VENV)/bin/pip install -q "ruff==$(RUFF_VERSION)"; }
	$(LINT_VENV)/bin/ruff check --no-fix .
	$(LINT_VENV)/bin/ruff format --check .

pot:  ## export i18n/async_lab.pot with Odoo from the dev database, and merge it into i18n/*.po
	@$(PYTHON) tools/devenv.py pot

bootstrap:  ## only .venv, Odoo source, PostgreSQL and .dev/odoo.conf
	@$(PYTHON) tools/devenv.py bootstrap --database

wheel:  ## dist/odoo_addon_async_lab-*.whl (whool), the addon without the dev tooling
	@$(PYTHON) tools/devenv.py wheel

clean:  ## forget the dev instance (database cluster included)
	rm -rf .dev .venv
