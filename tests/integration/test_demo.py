# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The demo data: a database created with demo data has a finished burst and an experiment with results.

``make test`` installs its databases without demo data, so this test
installs one with (``without_demo = False``), then reads the demo records
from the database and through a server: the burst's computed figures, the
experiment's results, the dashboard, the stats and the metrics.
"""

import configparser
import os
import subprocess
from datetime import timedelta

import pytest
from odoo_server import ODOO_BIN, OdooServer, connect, drop_database, rpc

DEMO_BURST = "async_lab_burst_demo_done"
DEMO_EXPERIMENT = "async_lab_experiment_demo"


@pytest.fixture(scope="module")
def demo_db(base_conf, db_params, tmp_path_factory):
    """A database where async_lab was installed with demo data: (its name, its config)."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(base_conf)
    conf["options"]["without_demo"] = "False"
    conf_path = tmp_path_factory.mktemp("demo") / "odoo.conf"
    with open(conf_path, "w") as fh:
        conf.write(fh)
    db = "async_lab_demo_%d" % os.getpid()
    proc = subprocess.run(
        [str(ODOO_BIN), "-c", str(conf_path), "-d", db, "-i", "async_lab", "--stop-after-init", "--workers=0"]
        + ["--max-cron-threads=0", "--log-level=warn"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert " ERROR " not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
        yield db, conf_path
    finally:
        drop_database(db_params, db)


def ref_id(cr, name):
    cr.execute("SELECT model, res_id FROM ir_model_data WHERE module = 'async_lab' AND name = %s", [name])
    row = cr.fetchone()
    assert row, "no demo record async_lab.%s" % name
    return row


def test_demo_burst_ran_its_jobs(demo_db, db_params):
    db, _conf = demo_db
    conn = connect(db_params, db)
    with conn.cursor() as cr:
        cr.execute("SELECT demo FROM ir_module_module WHERE name = 'async_lab'")
        assert cr.fetchone()[0], "installed with demo data"
        model, burst_id = ref_id(cr, DEMO_BURST)
        assert model == "async_lab.burst"
        cr.execute("SELECT job_count, launch_count, launched_at FROM async_lab_burst WHERE id = %s", [burst_id])
        job_count, launch_count, launched_at = cr.fetchone()
        assert launch_count == 1 and launched_at
        cr.execute(
            """SELECT state, async_lab_launch, worker_pid, date_created, date_enqueued, async_lab_date_received,
                      date_started, date_done, exec_time, channel, model_name, method_name
                 FROM queue_job WHERE async_lab_burst_id = %s ORDER BY id""",
            [burst_id],
        )
        jobs = cr.fetchall()
    conn.close()
    assert len(jobs) == job_count == 12
    second = timedelta(seconds=1)  # queue_job stores its dates to the second
    for state, launch, pid, created, enqueued, received, started, done, exec_time, channel, model, method in jobs:
        assert (state, launch, channel) == ("done", 1, "root.async_lab.io")
        assert (model, method) == ("async_lab.burst", "_job_task")
        assert pid and pid != os.getpid()
        assert created <= enqueued <= received <= started + second and started <= done
        assert exec_time >= 0.05, "each job slept its 50 ms"


def test_demo_records_through_the_server(demo_db, make_server_for):
    db, conf = demo_db
    server = make_server_for(conf, db)
    admin = server.session()
    burst = read_ref(
        server,
        admin,
        DEMO_BURST,
        ["state", "jobs_done", "jobs_total", "jobs_failed", "makespan", "jobs_per_second", "pid_distribution"],
    )
    assert burst["state"] == "done"
    assert burst["jobs_done"] == burst["jobs_total"] == 12 and not burst["jobs_failed"]
    # One process ran them one after another: at least 12 x 50 ms.
    assert burst["makespan"] >= 0.6 and burst["jobs_per_second"] > 0
    assert sum(row["jobs"] for row in burst["pid_distribution"]) == 12

    experiment = read_ref(server, admin, DEMO_EXPERIMENT, ["state", "result_ids", "started_at", "finished_at"])
    assert experiment["state"] == "done"
    assert experiment["started_at"] <= experiment["finished_at"]
    results = rpc(
        server,
        admin,
        "async_lab.experiment.result",
        "read",
        experiment["result_ids"],
        ["strategy", "tasks", "wall_seconds", "speedup", "ideal", "efficiency", "errors"],
    )
    by_strategy = {row["strategy"]: row for row in results}
    assert set(by_strategy) == {"sequential", "threads", "asyncio"}
    for row in results:
        assert row["tasks"] == 8 and not row["errors"]
        assert row["efficiency"] == pytest.approx(row["speedup"] / row["ideal"], abs=0.01)
    assert by_strategy["sequential"]["wall_seconds"] >= 8 * 0.05
    assert by_strategy["sequential"]["speedup"] == pytest.approx(1, abs=0.01)
    # 8 sleeps at once: threads and asyncio are several times faster than one after another.
    assert by_strategy["threads"]["speedup"] > 2 and by_strategy["asyncio"]["speedup"] > 2

    # The dashboard, the stats and the metrics read them.
    data = rpc(server, admin, "async_lab.dashboard", "get_data", 1440, 60)
    assert data["lab"]["latest"], "the lab panel shows the demo experiment"
    stats = admin.get(server.url + "/async_lab/stats", params={"window": 1440}, timeout=30)
    assert stats.status_code == 200, stats.text
    io = [c for c in stats.json()["channels"] if c["name"] == "root.async_lab.io"]
    assert io and io[0]["done"] >= 12, stats.json()["channels"]
    metrics = admin.get(server.url + "/async_lab/metrics", timeout=30)
    assert metrics.status_code == 200, metrics.text


def read_ref(server, session, xmlid, fields):
    """The ``fields`` of demo record async_lab.``xmlid``, read through the server."""
    model, res_id = rpc(server, session, "ir.model.data", "check_object_reference", "async_lab", xmlid)
    (values,) = rpc(server, session, model, "read", [res_id], fields)
    return values


@pytest.fixture
def make_server_for(tmp_path):
    servers = []

    def factory(conf, db):
        server = OdooServer(conf, db, tmp_path, workers=0, max_cron_threads=0)
        servers.append(server)
        return server.start()

    yield factory
    for server in servers:
        server.stop()
