# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The user-impact preset on a real prefork server (issue #13): a burst against a steady probe."""

CHANNELS = "root:1,root.async_lab:1,root.async_lab.io:1,root.async_lab.cpu:1,root.async_lab.serial:1:sequential"


def test_a_burst_holds_one_worker_of_two_and_the_probe_measures_it(make_server):
    server = make_server(workers=2, channels=CHANNELS)
    session = server.session()
    resp = session.post(
        server.url + "/async_lab/impact",
        json={"params": {"ms": 1000}, "tasks": 6, "rate": 5, "channel": "root.async_lab.io"},
        timeout=30,
    )
    assert resp.status_code == 202, resp.text
    status_url = server.url + resp.json()["status_url"]

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
