# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The lab's own PostgreSQL connections stay bounded on a real prefork server.

Four Managers send POST /async_lab/run with 64 io_db tasks at once: before
the bound, each opened 64 connections (256, past PostgreSQL's 100).
"""

import threading
from concurrent.futures import ThreadPoolExecutor

MAX_DB_CONNECTIONS = 8
RUN = {"workload": "io_db", "params": {"ms": 300}, "strategy": "threads", "tasks": 64}


def test_parallel_io_db_runs_hold_a_bounded_number_of_connections(make_server, db_cursor):
    db_cursor.execute(
        "INSERT INTO ir_config_parameter (key, value) VALUES ('async_lab.max_db_connections', %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        [str(MAX_DB_CONNECTIONS)],
    )
    server = make_server(workers=4, max_cron_threads=0)
    sessions = [server.session() for _ in range(4)]
    peak, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            db_cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'SELECT pg_sleep%%'",
                [server.db],
            )
            peak[0] = max(peak[0], db_cursor.fetchone()[0])
            stop.wait(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(lambda s: s.post(server.url + "/async_lab/run", json=RUN, timeout=120), sessions))
    finally:
        stop.set()
        sampler.join()
    statuses = sorted(resp.status_code for resp in responses)
    assert set(statuses) <= {200, 409}, [resp.text for resp in responses]
    assert 200 in statuses
    for resp in responses:
        if resp.status_code == 409:
            assert resp.json()["error"]["code"] == "conflict"
        else:
            assert (resp.json()["pool_size"], resp.json()["errors"]) == (MAX_DB_CONNECTIONS, 0)
    assert 0 < peak[0] <= MAX_DB_CONNECTIONS, peak[0]
    # The measured peak, in pytest's output (-s or -rA).
    # pylint: disable-next=print-used
    print("statuses %s, peak io_db connections %d (bound %d)" % (statuses, peak[0], MAX_DB_CONNECTIONS))
