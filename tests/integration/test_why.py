# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""'Why isn't this job running?' on a real prefork server (issue #13)."""

import os
import signal

CHANNELS = "root:2,root.async_lab:2,root.async_lab.io:1,root.async_lab.cpu:1,root.async_lab.serial:1:sequential"


def why(server, session, uuid):
    resp = session.get(server.url + "/async_lab/jobs/%s/why" % uuid, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_a_full_channel_then_a_killed_worker(make_server, db_cursor):
    server = make_server(workers=3, channels=CHANNELS)
    session = server.session()
    resp = session.post(
        server.url + "/async_lab/jobs",
        json={"workload": "io_sleep", "params": {"ms": 8000}, "count": 3, "channel": "root.async_lab.io"},
        timeout=30,
    )
    assert resp.status_code == 202, resp.text
    first, second, third = resp.json()["job_uuids"]

    def started():
        db_cursor.execute(
            "SELECT uuid, worker_pid FROM queue_job WHERE uuid = ANY(%s) AND state = 'started'",
            [[first, second, third]],
        )
        rows = db_cursor.fetchall()
        return rows[0] if rows else None

    running_uuid, worker_pid = server.wait_for(started, timeout=60, what="one job started")
    waiting = [u for u in (first, second, third) if u != running_uuid]

    # The channel holds one job: the others wait for it, and say which one and where.
    found = why(server, session, waiting[0])
    assert found["code"] == "channel_full", found
    assert found["data"]["channel"] == "root.async_lab.io" and found["data"]["capacity"] == 1
    assert [(r["uuid"], r["worker_pid"]) for r in found["data"]["running"]] == [(running_uuid, worker_pid)]
    assert why(server, session, running_uuid)["code"] in ("running", "running_long")

    # SIGKILL the worker that runs it: once the map knows it is gone, the job says so.
    os.kill(worker_pid, signal.SIGKILL)

    def gone():
        found = why(server, session, running_uuid)
        return found if found["code"] == "worker_gone" else None

    found = server.wait_for(gone, timeout=45, interval=1, what="worker_gone")
    assert found["data"]["worker_pid"] == worker_pid
    assert found["data"]["lock_free"] is True and found["data"]["then"] == "pending"
    assert 0 < found["data"]["requeued_within"] <= 70
