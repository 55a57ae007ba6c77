# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Fixtures of the multi-worker integration tests.

``make test`` passes the database where it has just installed async_lab
(ASYNC_LAB_TEST_DB) and the dev config (ASYNC_LAB_ODOO_CONF). Run alone
(``.venv/bin/pytest -p no:odoo tests/integration``) they install a database
of their own from ``.dev/odoo.conf`` and drop it afterwards.
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from odoo_server import REPO, OdooServer, connect, db_params, drop_database, odoo_setup


@pytest.fixture(scope="session")
def base_conf():
    path = Path(os.environ.get("ASYNC_LAB_ODOO_CONF") or REPO / ".dev" / "odoo.conf")
    if not path.exists():
        pytest.fail("no Odoo config at %s: run `make bootstrap` first" % path)
    return path


@pytest.fixture(scope="session", name="db_params")
def db_params_fixture(base_conf):
    return db_params(base_conf)


@pytest.fixture(scope="session")
def odoo_db(base_conf, db_params):
    db = os.environ.get("ASYNC_LAB_TEST_DB")
    if db:
        yield db
        return
    db = "async_lab_it_%d" % os.getpid()
    odoo_setup(base_conf, db, "-i", "async_lab")
    try:
        yield db
    finally:
        drop_database(db_params, db)


@pytest.fixture
def db_cursor(odoo_db, db_params):
    conn = connect(db_params, odoo_db)
    with conn.cursor() as cr:
        yield cr
    conn.close()


@pytest.fixture
def make_server(base_conf, odoo_db, tmp_path):
    """Factory: ``make_server(workers=3, ...)`` starts a server; all stop at teardown."""
    servers = []

    def factory(**kw):
        server = OdooServer(base_conf, odoo_db, tmp_path, **kw)
        servers.append(server)
        return server.start()

    yield factory
    for server in servers:
        server.stop()
