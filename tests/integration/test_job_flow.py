# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Bursts through the real job runner of a prefork server."""

from itertools import pairwise

from odoo_server import post_burst, wait_for_bursts_done

CHANNELS = "root:2,root.async_lab:2,root.async_lab.io:2,root.async_lab.cpu:1,root.async_lab.serial:1:sequential"


def test_sixty_jobs_across_io_cpu_and_serial(make_server, db_cursor):
    server = make_server(workers=3, max_cron_threads=1, channels=CHANNELS)
    session = server.session()
    bursts = [
        post_burst(server, session, workload="io_sleep", params={"ms": 100}, count=30, channel="root.async_lab.io"),
        post_burst(
            server, session, workload="cpu_python", params={"n": 200000}, count=10, channel="root.async_lab.cpu"
        ),
        post_burst(server, session, workload="io_sleep", params={"ms": 50}, count=20, channel="root.async_lab.serial"),
    ]
    ids = [b["burst_id"] for b in bursts]
    assert sum(len(b["job_uuids"]) for b in bursts) == 60

    wait_for_bursts_done(server, db_cursor, ids, 60, timeout=180, interval=1, what="60 jobs done")

    # The background pattern's poll URL tells the same.
    job = session.get(server.url + bursts[0]["status_url"], timeout=30).json()
    assert job["state"] == "done" and job["worker_pid"] and job["date_done"]

    # The serial channel never ran two jobs at once.
    db_cursor.execute(
        """SELECT date_started, date_done FROM queue_job
            WHERE async_lab_burst_id = %s ORDER BY date_started""",
        [bursts[2]["burst_id"]],
    )
    spans = db_cursor.fetchall()
    assert len(spans) == 20
    for (_s1, done1), (start2, _d2) in pairwise(spans):
        assert start2 >= done1, "serial jobs overlapped: %s > %s" % (done1, start2)

    # Several HTTP workers ran the jobs, all children of the master.
    db_cursor.execute("SELECT DISTINCT worker_pid FROM queue_job WHERE async_lab_burst_id = ANY(%s)", [ids])
    pids = {row[0] for row in db_cursor.fetchall()}
    assert len(pids) >= 2, pids
    children = {p.pid for p in server.children()}
    assert pids <= children, (pids, children)

    # The stats payload counts what SQL counts.
    stats = session.get(server.url + "/async_lab/stats?window=60", timeout=30).json()
    db_cursor.execute(
        """SELECT channel, count(*) FROM queue_job
            WHERE state = 'done' AND date_done >= (now() at time zone 'UTC') - interval '60 minutes'
            GROUP BY channel"""
    )
    expected = dict(db_cursor.fetchall())
    got = {c["name"]: c["done"] for c in stats["channels"] if c["done"]}
    assert got == expected
    assert stats["runner"]["alive"] and stats["runner"]["pid"] in children
    assert stats["runner"]["last_dispatched"]
    capacities = {c["name"]: c["capacity"] for c in stats["channels"] if c["configured"]}
    assert capacities["root.async_lab.serial"] == 1 and capacities["root"] == 2
