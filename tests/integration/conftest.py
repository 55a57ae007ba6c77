# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Fixtures of the multi-worker integration tests.

``make test`` passes the database where it has just installed async_lab
(ASYNC_LAB_TEST_DB) and the dev config (ASYNC_LAB_ODOO_CONF). Run alone
(``.venv/bin/pytest -p no:odoo tests/integration``) they install a database
of their own from ``.dev/odoo.conf`` and drop it afterwards.
"""

import configparser
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from odoo_server import ODOO_BIN, REPO, OdooServer  # noqa: E402


def _db_params(conf_path):
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(conf_path)
    opts = conf["options"]
    params = {}
    for key in ("host", "port", "user", "password"):
        value = opts.get("db_" + key, "False")
        if value and value != "False":
            params[key] = value
    return params


@pytest.fixture(scope="session")
def base_conf():
    path = Path(os.environ.get("ASYNC_LAB_ODOO_CONF") or REPO / ".dev" / "odoo.conf")
    if not path.exists():
        pytest.fail("no Odoo config at %s: run `make bootstrap` first" % path)
    return path


@pytest.fixture(scope="session")
def db_params(base_conf):
    return _db_params(base_conf)


@pytest.fixture(scope="session")
def odoo_db(base_conf, db_params):
    db = os.environ.get("ASYNC_LAB_TEST_DB")
    if db:
        yield db
        return
    db = "async_lab_it_%d" % os.getpid()
    subprocess.run(
        [str(ODOO_BIN), "-c", str(base_conf), "-d", db, "-i", "async_lab", "--stop-after-init",
         "--workers=0", "--max-cron-threads=0", "--without-demo=all", "--log-level=warn"],
        check=True,
    )  # fmt: skip
    try:
        yield db
    finally:
        conn = psycopg2.connect(dbname="postgres", **db_params)
        conn.autocommit = True
        with conn.cursor() as cr:
            cr.execute('DROP DATABASE IF EXISTS "%s"' % db)
        conn.close()


@pytest.fixture
def db_cursor(odoo_db, db_params):
    conn = psycopg2.connect(dbname=odoo_db, **db_params)
    conn.autocommit = True
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
