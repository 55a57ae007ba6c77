# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""A real Prometheus (Debian's ``prometheus``) scrapes /async_lab/metrics of a prefork server with an API key.

Each scrape is answered by whichever HTTP worker takes it: the figures must
be the same from all of them, since they come from the database.
"""

import binascii
import contextlib
import json
import os
import shutil
import subprocess
import time

import pytest
import requests
from odoo_server import REPO, ensure_user, free_port, post_burst, wait_for_bursts_done

from odoo.addons.base.models.res_users import INDEX_SIZE, KEY_CRYPT_CONTEXT

CHANNEL = "root.async_lab.serial"
JOBS = 12


def prometheus():
    exe = shutil.which("prometheus")
    if not exe:
        pytest.fail("Prometheus is missing (Debian: apt-get install prometheus); `.ci/run` installs it")
    return exe


def api_key(db_cursor, login):
    """An Odoo API key of ``login``, stored as Odoo stores one (hashed, found by its index)."""
    key = binascii.hexlify(os.urandom(20)).decode()
    db_cursor.execute(
        """INSERT INTO res_users_apikeys (name, user_id, scope, key, index, create_date)
           SELECT 'prometheus', id, NULL, %s, %s, now() at time zone 'utc'
             FROM res_users WHERE login = %s""",
        [KEY_CRYPT_CONTEXT.hash(key), key[:INDEX_SIZE], login],
    )
    assert db_cursor.rowcount == 1
    return key


def query(url, expression):
    resp = requests.get(url + "/api/v1/query", params={"query": expression}, timeout=10)
    assert resp.status_code == 200, (expression, resp.text)
    return resp.json()["data"]["result"]


def grafana_queries():
    """``(panel title, PromQL)`` of docs/grafana/async_lab.json, its variables replaced as Grafana would."""
    dashboard = json.loads((REPO / "docs" / "grafana" / "async_lab.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            expression = target["expr"].replace("$__rate_interval", "1m")
            yield panel["title"], expression.replace('"$job"', '".*"').replace('"$channel"', '".*"')


def value_of(url, expression):
    result = query(url, expression)
    return float(result[0]["value"][1]) if result else None


@pytest.fixture
def start_prometheus(tmp_path):
    procs = []

    def start(target, key):
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n"
            "  - job_name: async_lab\n"
            "    metrics_path: /async_lab/metrics\n"
            "    authorization:\n      type: Bearer\n      credentials: %s\n"
            "    static_configs:\n      - targets: ['%s']\n" % (key, target)
        )
        # Not a with block: the log stays open for the process, and is closed with it.
        log = open(tmp_path / "prometheus.log", "w")
        proc = subprocess.Popen(
            [
                prometheus(),
                "--config.file=%s" % config,
                "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                "--web.listen-address=127.0.0.1:%d" % port,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append((proc, log))
        url = "http://127.0.0.1:%d" % port
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(url + "/-/ready", timeout=2).status_code == 200:
                    return url
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            time.sleep(0.3)
        pytest.fail("Prometheus did not get ready:\n" + (tmp_path / "prometheus.log").read_text())

    yield start
    for proc, log in procs:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_prometheus_scrapes_the_counters_of_a_prefork_server(make_server, db_cursor, start_prometheus):
    server = make_server(workers=2, channels="root:2,root.async_lab:2,root.async_lab.serial:1:sequential")
    admin = server.session()
    ensure_user(server, admin, "prometheus_scraper", "base.group_user", "async_lab.async_lab_group_user")
    url = start_prometheus(server.url.split("//", 1)[1], api_key(db_cursor, "prometheus_scraper"))
    done = 'async_lab_jobs_done_total{channel="%s"}' % CHANNEL

    server.wait_for(lambda: value_of(url, 'up{job="async_lab"}') == 1, timeout=30, what="a first scrape (up = 1)")
    before = value_of(url, done) or 0.0
    burst = post_burst(server, admin, workload="noop", count=JOBS, channel=CHANNEL)
    wait_for_bursts_done(server, db_cursor, [burst["burst_id"]], JOBS, timeout=90, interval=0.5, what="the burst")
    server.wait_for(
        lambda: value_of(url, done) == before + JOBS, timeout=30, what="Prometheus's done counter up by the burst"
    )
    # The counter is the database's count of the channel's done jobs (none deleted since the install).
    db_cursor.execute("SELECT count(*) FROM queue_job WHERE state = 'done' AND channel = %s", [CHANNEL])
    assert value_of(url, done) == db_cursor.fetchone()[0]

    assert value_of(url, 'up{job="async_lab"}') == 1
    # Every stage of the burst's jobs is in the histograms, and the processes are there with their role.
    count = 'async_lab_job_stage_seconds_count{channel="%s",stage="started_done"}' % CHANNEL
    assert value_of(url, count) >= JOBS
    roles = {r["metric"]["role"] for r in query(url, "async_lab_process_up == 1")}
    assert {"http", "jobrunner"} <= roles, roles
    assert value_of(url, "async_lab_job_runner_up") == 1
    db_cursor.execute(
        "SELECT pid FROM async_lab_worker WHERE master_pid = %s AND role = 'jobrunner' AND state = 'alive'",
        [server.pid],
    )
    runner = [int(r["metric"]["pid"]) for r in query(url, "async_lab_job_runner_info")]
    assert runner == [pid for (pid,) in db_cursor.fetchall()]

    # Every query of the Grafana dashboard runs on these metrics; those that
    # must have data now have it.
    empty = {title for title, expression in grafana_queries() if not query(url, expression)}
    # (No process was respawned, and the advisor may find nothing: no series.)
    assert not empty - {"Respawns by reason (per hour)", "Capacity advisor findings"}, empty


def test_the_example_scrape_configuration_is_valid(tmp_path):
    promtool = shutil.which("promtool") or pytest.fail("promtool is missing (Debian: apt-get install prometheus)")
    key = tmp_path / "odoo_api_key"
    key.write_text("0" * 40)
    config = tmp_path / "prometheus.yml"
    text = (REPO / "docs" / "prometheus.yml").read_text()
    assert "/etc/prometheus/odoo_api_key" in text
    config.write_text(text.replace("/etc/prometheus/odoo_api_key", str(key)))
    proc = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
