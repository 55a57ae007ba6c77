# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Start a real Odoo server process for the multi-worker integration tests.

Odoo's own test runner only supports workers=0, so these tests (plain pytest,
run by ``make test``) start a separate server from a config derived from the
dev config, on free ports, and look at it from outside: HTTP, its log and
its process tree (psutil).
"""

# Test tooling outside Odoo: its progress lines (a minute-long install) go to pytest's output.
# pylint: disable=print-used

import configparser
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg2
import psycopg2.sql
import requests

REPO = Path(__file__).resolve().parents[2]
ODOO_BIN = Path(sys.executable).parent / "odoo"
WORKER_ALIVE = re.compile(r"Worker (?P<cls>\w+) \((?P<pid>\d+)\) alive")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OdooServer:
    """One Odoo server process (prefork when workers > 0) and its log."""

    def __init__(self, base_conf, db, tmp_path, *, workers=3, max_cron_threads=1, channels=None, options=None):
        self.db = db
        self.port = free_port()
        self.gevent_port = free_port()
        self.logfile = tmp_path / ("odoo-%d.log" % self.port)
        self.conf_path = tmp_path / ("odoo-%d.conf" % self.port)
        conf = configparser.ConfigParser(interpolation=None)
        conf.read(base_conf)
        opts = conf["options"]
        opts.update(
            db_name=db,
            dbfilter="^%s$" % re.escape(db),
            http_port=str(self.port),
            gevent_port=str(self.gevent_port),
            workers=str(workers),
            max_cron_threads=str(max_cron_threads),
            logfile=str(self.logfile),
            log_level="info",
            server_wide_modules="base,web,queue_job",
        )
        opts.update({key: str(value) for key, value in (options or {}).items()})  # the caller's last word
        if not conf.has_section("queue_job"):
            conf.add_section("queue_job")
        conf["queue_job"]["port"] = str(self.port)
        conf["queue_job"]["host"] = "127.0.0.1"
        if channels:
            conf["queue_job"]["channels"] = channels
        with open(self.conf_path, "w") as fh:
            conf.write(fh)
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=120):
        # The venv's bin first on PATH, as in an activated venv: a reload
        # (SIGHUP) re-executes "python" found there, not the system's.
        env = dict(os.environ, PATH="%s:%s" % (ODOO_BIN.parent, os.environ.get("PATH", "")))
        # What Odoo prints before its log is set up (a port already in use...).
        self.outfile = self.logfile.with_suffix(".out")
        with open(self.outfile, "ab") as out:
            self.proc = subprocess.Popen(
                [str(ODOO_BIN), "-c", str(self.conf_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "Odoo exited (%s):\n%s\n%s"
                    % (self.proc.returncode, self.log()[-3000:], self.outfile.read_text()[-2000:])
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/web/health", timeout=2).status_code == 200:
                    return self
            time.sleep(0.5)
        raise RuntimeError("Odoo did not become healthy:\n%s" % self.log()[-3000:])

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        return self.logfile.read_text() if self.logfile.exists() else ""

    def workers_from_log(self):
        """{pid: worker class} as announced by each worker when it starts."""
        return {int(m["pid"]): m["cls"] for m in WORKER_ALIVE.finditer(self.log())}

    def children(self):
        return psutil.Process(self.pid).children()

    def wait_for(self, predicate, timeout, interval=0.5, what="condition"):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
            time.sleep(interval)

    def session(self, login="admin", password="admin"):
        """A requests session logged in through /web/session/authenticate."""
        sess = requests.Session()
        resp = sess.post(
            self.url + "/web/session/authenticate",
            json={"jsonrpc": "2.0", "params": {"db": self.db, "login": login, "password": password}},
            timeout=30,
        )
        resp.raise_for_status()
        assert resp.json().get("result", {}).get("uid"), resp.text
        return sess

    def stop(self, timeout=30):
        """Graceful stop (SIGTERM to the master), then kill any straggler."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


# -- bursts ---------------------------------------------------------------------
def post_burst(server, session, **body):
    """POST /async_lab/jobs as ``session``: the JSON of its 202 answer."""
    resp = session.post(server.url + "/async_lab/jobs", json=body, timeout=30)
    assert resp.status_code == 202, resp.text
    return resp.json()


def wait_for_bursts_done(server, db_cursor, burst_ids, count, *, timeout, interval, what):
    """Wait until the ``count`` jobs of ``burst_ids`` are done; fail at the first failed one."""

    def all_done():
        db_cursor.execute(
            "SELECT state, count(*) FROM queue_job WHERE async_lab_burst_id = ANY(%s) GROUP BY state", [burst_ids]
        )
        states = dict(db_cursor.fetchall())
        assert not states.get("failed"), states
        return states.get("done") == count

    server.wait_for(all_done, timeout=timeout, interval=interval, what=what)


# -- users and RPC --------------------------------------------------------------
def rpc(server, session, model, method, *args, **kwargs):
    resp = session.post(
        server.url + "/web/dataset/call_kw",
        timeout=30,
        json={
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"model": model, "method": method, "args": list(args), "kwargs": kwargs},
        },
    )
    data = resp.json()
    assert "result" in data, data
    return data["result"]


def ensure_user(server, admin, login, *groups):
    found = rpc(server, admin, "res.users", "search", [("login", "=", login)])
    group_ids = [
        rpc(server, admin, "ir.model.data", "check_object_reference", *group.split("."))[1] for group in groups
    ]
    values = {"name": login, "login": login, "password": login, "groups_id": [(6, 0, group_ids)]}
    if found:
        rpc(server, admin, "res.users", "write", found, values)
    else:
        rpc(server, admin, "res.users", "create", values)
    return server.session(login, login)


# -- databases (shared by the integration tests and the benchmarks) -----------
BASE_COMMAND_OPTIONS = [
    "--stop-after-init",
    "--workers=0",
    "--max-cron-threads=0",
    "--without-demo=all",
    "--log-level=warn",
]


def db_params(conf_path):
    """psycopg2.connect keywords of the database server of an Odoo config."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(conf_path)
    params = {}
    for key in ("host", "port", "user", "password"):
        value = conf["options"].get("db_" + key, "False")
        if value and value != "False":
            params[key] = value
    return params


def connect(params, db, autocommit=True):
    conn = psycopg2.connect(dbname=db, **params)
    conn.autocommit = autocommit
    return conn


def module_states(params, db):
    """{module: state} of ``db``; None if it does not exist; ValueError if it is no Odoo database."""
    conn = connect(params, "postgres")
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db])
            if not cr.fetchone():
                return None
    finally:
        conn.close()
    conn = connect(params, db)
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT to_regclass('ir_module_module') IS NOT NULL")
            if not cr.fetchone()[0]:
                raise ValueError("database %s exists but is not an Odoo database" % db)
            cr.execute("SELECT name, state FROM ir_module_module")
            return dict(cr.fetchall())
    finally:
        conn.close()


def drop_database(params, db):
    conn = connect(params, "postgres")
    with conn.cursor() as cr:
        cr.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [db])
        cr.execute(psycopg2.sql.SQL("DROP DATABASE IF EXISTS {}").format(psycopg2.sql.Identifier(db)))
    conn.close()


def odoo_setup(conf, db, *args):
    """Run ``odoo -c conf -d db ARGS --stop-after-init`` (install, update) in one process."""
    subprocess.run([str(ODOO_BIN), "-c", str(conf), "-d", db, *args, *BASE_COMMAND_OPTIONS], check=True)


def ensure_modules(conf, params, db, modules, update=()):
    """Create ``db`` if needed, install the ``modules`` it lacks, update those of ``update``.

    Return the module states found before (None: the database was new).
    """
    states = module_states(params, db)
    installed = {name for name, state in (states or {}).items() if state == "installed"}
    missing = [module for module in modules if module not in installed]
    if missing:
        print("installing %s in database %s (a minute or two)" % (",".join(missing), db), flush=True)
        odoo_setup(conf, db, "-i", ",".join(missing))
    update = [module for module in update if module in installed]
    if update:
        print("updating %s in database %s" % (",".join(update), db), flush=True)
        odoo_setup(conf, db, "-u", ",".join(update))
    return states


# -- benchmarks (bench/*.py) ---------------------------------------------------
def add_database_options(parser, db):
    """The options of a bench on one database: --conf, --db, --no-update (``args.update``), --drop."""
    parser.add_argument(
        "--conf",
        type=Path,
        default=REPO / ".dev" / "odoo.conf",
        help="base Odoo config (database server, addons path); `make bootstrap` writes it",
    )
    parser.add_argument("--db", default=db, help="bench database: created with async_lab if missing, else reused")
    parser.add_argument(
        "--no-update",
        dest="update",
        action="store_false",
        help="reuse the database as is, without updating async_lab to this checkout first (update: %(default)s)",
    )
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")


def bench_database(conf, params, db, update):
    """Create the bench database ``db`` with async_lab, or reuse it, updated
    to this checkout if ``update``; exit when ``db`` is no Odoo database."""
    try:
        ensure_modules(conf, params, db, ["async_lab"], update=["async_lab"] if update else [])
    except ValueError as exc:
        sys.exit("%s: choose another --db" % exc)


def load_registry(conf, db):
    """An Odoo registry of ``db`` in this process.

    ``--stop-after-init`` keeps async_lab's process tracker from starting a
    heartbeat thread here: a one-off process writes nothing in the database.
    """
    import odoo  # here: the integration tests never load Odoo in their own process
    from odoo.modules.registry import Registry

    odoo.tools.config.parse_config(["-c", str(conf), "-d", db, "--stop-after-init", "--log-level=warn"])
    return Registry(db)


def interrupt_on_sigterm():
    """End the bench on SIGTERM as on Ctrl-C, through its ``finally`` clauses."""

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)


def end_bench(servers, params, dbs, tmp, *, ok, drop=False, keep=False, what="server config and log"):
    """A bench's last step: stop its servers, drop its databases if asked,
    keep its folder when asked or when it failed."""
    for server in servers:
        server.stop()
    if drop:
        for db in dbs:
            drop_database(params, db)
    if keep or not ok:
        print("%s kept in %s" % (what, tmp))
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def run_bench(main):
    """``sys.exit(main())``, with status 130 when interrupted (Ctrl-C, or SIGTERM after ``interrupt_on_sigterm``)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
