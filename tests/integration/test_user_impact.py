# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The user-impact preset on a real prefork server (issue #13): a burst against a steady probe."""

import time

import requests

CHANNELS = "root:1,root.async_lab:1,root.async_lab.io:1,root.async_lab.cpu:1,root.async_lab.serial:1:sequential"


def post_impact(server, session, *, tasks, rate):
    """POST /async_lab/impact of 1-second io_sleep jobs on the io channel: the JSON of its 202 answer."""
    resp = session.post(
        server.url + "/async_lab/impact",
        json={"params": {"ms": 1000}, "tasks": tasks, "rate": rate, "channel": "root.async_lab.io"},
        timeout=30,
    )
    assert resp.status_code == 202, resp.text
    return resp.json()


def test_a_burst_holds_one_worker_of_two_and_the_probe_measures_it(make_server):
    server = make_server(workers=2, channels=CHANNELS)
    session = server.session()
    status_url = server.url + post_impact(server, session, tasks=6, rate=5)["status_url"]

    def finished():
        data = session.get(status_url, timeout=30).json()
        return data if data["state"] not in ("queued", "running") else None

    data = server.wait_for(finished, timeout=90, interval=1, what="the user-impact run to end")
    assert data["state"] == "done", data
    figures = data["impact"]
    assert figures["errors"] == 0, figures
    # About 5 s at rest and 6 s of burst, at 5 requests a second.
    assert figures["requests"] >= 40, figures
    assert 0 < figures["idle_p50_ms"] <= figures["idle_p95_ms"]
    assert figures["burst_p95_ms"] > 0
    # One job at a time (root:1) on two workers: about half of their time.
    assert 0.3 <= figures["workers_held"] <= 0.7, figures
    assert (figures["http_workers"], figures["root_capacity"]) == (2, 1)

    # The probe's session is gone with the run, and the advisor cites the run.
    advice = session.get(server.url + "/async_lab/advice", timeout=30).json()
    assert advice["measured"]["user_impact"]["experiment_id"] == data["id"]


def test_cancel_stops_the_burst_and_ends_the_probe_session(make_server, db_cursor):
    server = make_server(workers=2, channels=CHANNELS)
    session = server.session()
    experiment_id = post_impact(server, session, tasks=20, rate=2)["experiment_id"]

    def launched():
        db_cursor.execute("SELECT burst_id, probe_sid FROM async_lab_experiment WHERE id = %s", [experiment_id])
        row = db_cursor.fetchone()
        return row if row[0] else None

    burst_id, sid = server.wait_for(launched, timeout=60, interval=0.5, what="the measurement's burst")
    assert sid, "the probe's session is recorded while the run lasts"
    cancel = session.post(
        server.url + "/web/dataset/call_kw/async_lab.experiment/action_cancel",
        json={
            "jsonrpc": "2.0",
            "method": "call",
            "params": {
                "model": "async_lab.experiment",
                "method": "action_cancel",
                "args": [[experiment_id]],
                "kwargs": {},
            },
        },
        timeout=30,
    )
    assert "error" not in cancel.json(), cancel.text
    db_cursor.execute("SELECT state, count(*) FROM queue_job WHERE async_lab_burst_id = %s GROUP BY state", [burst_id])
    states = dict(db_cursor.fetchall())
    assert states.get("cancelled", 0) >= 15 and not states.get("pending"), states

    # The probe's session no longer logs anyone in.
    info = requests.post(
        server.url + "/web/session/get_session_info",
        json={"jsonrpc": "2.0", "method": "call", "params": {}},
        cookies={"session_id": sid},
        timeout=30,
    ).json()
    assert not (info.get("result") or {}).get("uid"), info

    # The thread stops on its own (within a second) and leaves the cancelled experiment as it is.
    time.sleep(3)
    db_cursor.execute("SELECT state, impact, probe_sid FROM async_lab_experiment WHERE id = %s", [experiment_id])
    assert db_cursor.fetchone() == ("cancelled", None, None)
