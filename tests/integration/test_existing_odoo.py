# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The README's path into an existing Odoo 17, as a user takes it (issue #18).

No make and no dev tooling: a config made from ``odoo.conf.example`` with only
its paths, ports and database changed, the ``odoo`` command of the README,
the JSON API and XML-RPC. A second database with queue_job on the same
PostgreSQL server holds a dead and an enqueued job: the job runner must never
touch it.
"""

import configparser
import re
import subprocess
import time
import xmlrpc.client
from pathlib import Path

import pytest
from cdp import Chromium
from odoo_server import ODOO_BIN, REPO, WORKER_ALIVE, OdooServer, connect, drop_database, free_port

IO = "root.async_lab.io"
DASHBOARD = "/web#action=async_lab.async_lab_dashboard_action"
#: Seconds between two heartbeats of a process (lib/processes.py).
HEARTBEAT_INTERVAL = 5
OTHER_JOBS = """
    INSERT INTO queue_job (uuid, name, state, channel, priority, model_name, method_name, retry, max_retries,
                           date_created, date_enqueued, date_started, user_id, company_id)
    VALUES ('dead-job-of-another-db', 'dead', 'started', 'root', 10, 'res.partner', 'write', 0, 5,
            now() - interval '1 hour', now() - interval '1 hour', now() - interval '1 hour', 1, 1),
           ('enqueued-job-of-another-db', 'enqueued', 'enqueued', 'root', 10, 'res.partner', 'write', 0, 5,
            now() - interval '1 hour', now() - interval '1 hour', NULL, 1, 1)
"""


class UserServer(OdooServer):
    """A server started from the user's own config file, as is."""

    # Not OdooServer.__init__, which writes a config of its own: this server runs the user's file as is.
    def __init__(self, conf_path, db, port, logfile):
        self.conf_path, self.db, self.port, self.logfile = conf_path, db, port, logfile
        self.proc = None

    def log_since(self, offset):
        return self.log()[offset:]


def user_config(tmp_path, base_conf, db):
    """odoo.conf.example with only paths, ports and the database changed."""
    base = configparser.ConfigParser(interpolation=None)
    base.read(base_conf)
    addons = tmp_path / "addons"
    addons.mkdir()
    (addons / "async_lab").symlink_to(REPO, target_is_directory=True)
    # Odoo's own addons, from the dev config; async_lab from its folder here.
    odoo_addons = [p for p in base["options"]["addons_path"].split(",") if not (Path(p) / "async_lab").exists()]
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(REPO / "odoo.conf.example")
    opts = conf["options"]
    port = free_port()
    changed = {
        "addons_path": ",".join([*odoo_addons, str(addons)]),
        "data_dir": str(tmp_path / "data"),
        "logfile": str(tmp_path / "odoo.log"),
        "http_port": str(port),
        "gevent_port": str(free_port()),
        "db_name": db,
        "dbfilter": "^%s$" % re.escape(db),
        **{key: base["options"][key] for key in ("db_host", "db_port", "db_user", "db_password")},
    }
    assert set(changed) <= set(opts), "the example lacks %s" % (set(changed) - set(opts))
    opts.update(changed)
    conf["queue_job"]["port"] = str(port)
    path = tmp_path / "odoo.conf"
    with open(path, "w") as fh:
        conf.write(fh)
    return path, port


def odoo(conf, *args, check=True):
    """The ``odoo`` command, as the README writes it."""
    proc = subprocess.run([str(ODOO_BIN), "-c", str(conf), *args], capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def rpc(server, login="admin", password="admin"):
    """``execute(model, method, *args)`` over XML-RPC, as an external script calls Odoo."""
    common = xmlrpc.client.ServerProxy(server.url + "/xmlrpc/2/common")
    uid = common.authenticate(server.db, login, password, {})
    models = xmlrpc.client.ServerProxy(server.url + "/xmlrpc/2/object", allow_none=True)
    return lambda model, method, *args: models.execute_kw(server.db, uid, password, model, method, list(args))


def post_burst(server, session, ms, count):
    resp = session.post(
        server.url + "/async_lab/jobs",
        json={"workload": "io_sleep", "params": {"ms": ms}, "count": count, "channel": IO},
        timeout=30,
    )
    assert resp.status_code == 202, resp.text
    return resp.json()["burst_id"]


def banner_codes(server, session, runner_alive=False):
    """The dashboard's banners (None until it sees a job runner, if ``runner_alive``)."""
    resp = session.post(
        server.url + "/web/dataset/call_kw",
        json={
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"model": "async_lab.dashboard", "method": "get_data", "args": [], "kwargs": {}},
        },
        timeout=60,
    )
    data = resp.json()["result"]
    return [b["code"] for b in data["banners"]] if data["stats"]["runner"]["alive"] or not runner_alive else None


def job_states(db_params, db, bursts):
    with connect(db_params, db) as conn, conn.cursor() as cr:
        cr.execute("SELECT state, count(*) FROM queue_job WHERE async_lab_burst_id = ANY(%s) GROUP BY state", [bursts])
        return dict(cr.fetchall())


def module_states(db_params, db):
    with connect(db_params, db) as conn, conn.cursor() as cr:
        cr.execute("SELECT name, state FROM ir_module_module WHERE name IN ('async_lab', 'queue_job')")
        return dict(cr.fetchall())


@pytest.fixture
def databases(db_params):
    main, other = "async_lab_user_%d" % time.time_ns(), "async_lab_neighbour_%d" % time.time_ns()
    yield main, other
    for db in (main, other):
        drop_database(db_params, db)


def test_existing_odoo_path_of_the_readme(tmp_path, base_conf, db_params, databases):
    main, other = databases
    conf, port = user_config(tmp_path, base_conf, main)
    server = UserServer(conf, main, port, tmp_path / "odoo.log")

    # An existing database, and a neighbour with queue_job and jobs of its own.
    odoo(conf, "-d", main, "-i", "base", "--without-demo=all", "--stop-after-init", "--workers=0", "--no-http")
    odoo(conf, "-d", other, "-i", "queue_job", "--without-demo=all", "--stop-after-init", "--workers=0", "--no-http")
    neighbour = connect(db_params, other)
    with neighbour.cursor() as cr:
        cr.execute(OTHER_JOBS)
        cr.execute("SELECT uuid, state, retry, date_enqueued, date_started FROM queue_job ORDER BY uuid")
        other_jobs = cr.fetchall()

    try:
        # The web client's path on the running server (README step 3, second
        # way): Update Apps List, install, as the Apps menu calls them.
        first_start = len(server.log())  # the neighbour's creation logged above
        server.start()
        execute = rpc(server)
        execute("ir.module.module", "update_list")
        (module_id,) = execute("ir.module.module", "search", [("name", "=", "async_lab")])
        execute("ir.module.module", "button_immediate_install", [module_id])
        session = server.session()

        # Before the restart (README step 4), the runner does not know the
        # database: the jobs stay pending, and the dashboard names that cause.
        before = post_burst(server, session, ms=50, count=4)
        assert banner_codes(server, session) == ["runner_before_install"]
        with Chromium(width=1440, height=900) as browser:
            browser.set_cookie("session_id", session.cookies["session_id"], server.url)
            browser.navigate(server.url + DASHBOARD)
            browser.wait_for(
                "!!document.querySelector('.o_async_lab_banner[data-banner=runner_before_install]')",
                timeout=60,
                what="the banner on the dashboard",
            )
            assert not browser.evaluate("!!document.querySelector('.o_async_lab_no_runner')"), "a wrong cause"
            browser.screenshot(tmp_path / "banner.png")
        assert job_states(db_params, main, [before]) == {"pending": 4}

        # Restart: the runner serves the database, and a burst from the JSON
        # API reaches two HTTP workers.
        server.stop()
        restarted = len(server.log())
        server.start()
        session = server.session()
        server.wait_for(
            lambda: banner_codes(server, session, runner_alive=True) == [],
            timeout=60,
            what="the runner, and no banner, after the restart",
        )
        bursts = [before, post_burst(server, session, ms=300, count=12)]
        server.wait_for(
            lambda: job_states(db_params, main, bursts) == {"done": 16}, timeout=120, interval=1, what="16 jobs done"
        )
        with connect(db_params, main) as conn, conn.cursor() as cr:
            cr.execute("SELECT DISTINCT worker_pid FROM queue_job WHERE async_lab_burst_id = ANY(%s)", [bursts])
            pids = {r[0] for r in cr.fetchall()}
        assert len(pids) >= 2, pids
        assert pids <= {p.pid for p in server.children()}

        # Odoo's tests with the server's own config, beside it, refuse to run.
        before_tests = len(server.log())
        tests = odoo(
            conf,
            "--test-enable",
            "--test-tags",
            "/async_lab:TestDeploymentLib",
            "--stop-after-init",
            "--workers=0",
            "--max-cron-threads=0",
            check=False,
        )
        assert tests.returncode != 0
        refusal = server.log()[before_tests:]  # the config's logfile
        assert "async_lab's tests refuse to run" in refusal and "--db-filter=" in refusal, refusal[-3000:]

        # Uninstall while the server runs: its processes let the database go,
        # quietly. The job runner never reloads a registry: it must let go (the
        # cron worker reloads its registry when it runs a cron, or lets go too).
        offset = len(server.log())
        execute("ir.module.module", "button_immediate_uninstall", [module_id])
        (runner,) = {
            int(m["pid"]) for m in WORKER_ALIVE.finditer(server.log_since(restarted)) if m["cls"] == "WorkerJobRunner"
        }

        def detached():
            lines = re.findall(
                r" (\d+) INFO \S+ odoo\.addons\.async_lab\.process_tracker: .*stops tracking", server.log_since(offset)
            )
            return runner in {int(pid) for pid in lines}

        server.wait_for(detached, timeout=60, what="the job runner to let %s go" % main)
        time.sleep(2 * HEARTBEAT_INTERVAL)  # two more beats: nothing more to say
        errors = [line for line in server.log_since(offset).splitlines() if " ERROR " in line]
        assert not errors, "\n".join(errors[:10])
        assert module_states(db_params, main) == {"async_lab": "uninstalled", "queue_job": "installed"}

        # The command line's path (README step 3, first way), with the server
        # running, then the restart.
        odoo(conf, "-d", main, "-i", "async_lab", "--stop-after-init", "--workers=0", "--no-http")
        assert module_states(db_params, main)["async_lab"] == "installed"
        server.stop()
        server.start()
        session = server.session()
        server.wait_for(
            lambda: banner_codes(server, session, runner_alive=True) == [],
            timeout=60,
            what="the runner after the restart",
        )
        again = post_burst(server, session, ms=50, count=4)
        server.wait_for(
            lambda: job_states(db_params, main, [again]) == {"done": 4}, timeout=60, interval=1, what="4 jobs done"
        )
    finally:
        server.stop()

    # The neighbour was never touched.
    with neighbour.cursor() as cr:
        cr.execute("SELECT uuid, state, retry, date_enqueued, date_started FROM queue_job ORDER BY uuid")
        assert cr.fetchall() == other_jobs
    neighbour.close()
    log = server.log()[first_start:]
    assert other not in log
    assert set(re.findall(r"queue job runner ready for db (\S+)", log)) == {main}
