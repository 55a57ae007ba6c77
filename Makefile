# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
#
# The two commands of the README. Both are idempotent and set up everything
# they need (.venv, Odoo 17.0 source, PostgreSQL) on the first run.
# Variables: ODOO_SRC, DB, HTTP_PORT, GEVENT_PORT, PROXY_PORT, WORKERS, PG_PORT, PGHOST...

PYTHON ?= python3
LINT_VENV := .dev/lint
LINT_REQUIREMENTS := tools/requirements-lint.txt
# npm, for the node hooks, trusts the system's certificate authorities as pip and
# git do (node alone knows only its own bundled list).
ifneq ($(wildcard /etc/ssl/certs/ca-certificates.crt),)
export NODE_EXTRA_CA_CERTS ?= /etc/ssl/certs/ca-certificates.crt
endif

.PHONY: run test lint pot bootstrap wheel clean

run:  ## multi-worker dev instance behind nginx on http://127.0.0.1:$(PROXY_PORT) (default 8080)
	@$(PYTHON) tools/devenv.py run

test:  ## the whole test suite, ends with "N passed, N failed"
	@$(PYTHON) tools/devenv.py test

lint:  ## the pre-commit hooks (.pre-commit-config.yaml) on every file: ruff, pylint-odoo, prettier, eslint
	@cmp -s $(LINT_REQUIREMENTS) $(LINT_VENV)/requirements.txt \
		|| { rm -rf $(LINT_VENV) && $(PYTHON) -m venv $(LINT_VENV) \
			&& $(LINT_VENV)/bin/pip install -q --disable-pip-version-check -r $(LINT_REQUIREMENTS) \
			&& cp $(LINT_REQUIREMENTS) $(LINT_VENV)/requirements.txt; }
	$(LINT_VENV)/bin/pre-commit run --all-files --show-diff-on-failure --color=$(if $(CI),never,auto)

pot:  ## export i18n/async_lab.pot with Odoo from the dev database, and merge it into i18n/*.po
	@$(PYTHON) tools/devenv.py pot

bootstrap:  ## only .venv, Odoo source, PostgreSQL and .dev/odoo.conf
	@$(PYTHON) tools/devenv.py bootstrap --database

wheel:  ## dist/odoo_addon_async_lab-*.whl (whool), the addon without the dev tooling
	@$(PYTHON) tools/devenv.py wheel

clean:  ## forget the dev instance (database cluster included)
	rm -rf .dev .venv
