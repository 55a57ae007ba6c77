# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""io_http's signed self-calls work on a real prefork server, and leave no token in the access log."""

import re

from odoo_server import post_burst, wait_for_bursts_done

CHANNELS = "root:2,root.async_lab:2,root.async_lab.io:2"


def test_io_http_jobs_and_inline_runs_call_back_with_a_header_token(make_server, db_cursor):
    server = make_server(workers=3, max_cron_threads=0, channels=CHANNELS)
    session = server.session()
    burst_id = post_burst(server, session, workload="io_http", params={"ms": 20}, count=4)["burst_id"]
    wait_for_bursts_done(server, db_cursor, [burst_id], 4, timeout=120, interval=0.5, what="4 io_http jobs done")
    run = session.post(
        server.url + "/async_lab/run",
        timeout=60,
        json={"workload": "io_http", "params": {"ms": 20}, "strategy": "threads", "tasks": 2},
    )
    assert run.status_code == 200, run.text
    assert run.json()["errors"] == 0, run.json()["first_error"]
    calls = re.findall(r'"GET (/async_lab/io\S*) HTTP/1.1" (\d+)', server.log())
    assert len(calls) >= 6, calls
    assert {status for _path, status in calls} == {"200"}, calls
    assert not [path for path, _status in calls if "token" in path or "key" in path], calls
