# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The per-user limit of load calls holds across the HTTP workers of a prefork server."""

import threading

LOAD_LOCK_NAMESPACE = 0x41534C00  # controllers/main.py


def held_load_slots(db_cursor, uid):
    db_cursor.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = %s "
        "AND classid BETWEEN %s AND %s",
        [uid, LOAD_LOCK_NAMESPACE, LOAD_LOCK_NAMESPACE + 63],
    )
    return db_cursor.fetchone()[0]


def test_third_concurrent_load_call_gets_429(make_server, db_cursor):
    server = make_server(workers=3, max_cron_threads=0)
    session = server.session()
    uid = session.get(server.url + "/async_lab/whoami", timeout=30).json()["uid"]
    db_cursor.execute("DELETE FROM ir_config_parameter WHERE key = 'async_lab.load_calls_per_user'")
    results = []

    def call():
        results.append(session.get(server.url + "/async_lab/io?ms=3000", timeout=60))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    # Both calls run, each in its own worker, each holding one of the 2 slots.
    server.wait_for(lambda: held_load_slots(db_cursor, uid) == 2, timeout=20, interval=0.05, what="2 load slots")
    third = session.get(server.url + "/async_lab/cpu?n=10", timeout=30)
    assert third.status_code == 429, third.text
    assert third.json()["error"]["code"] == "too_many_requests"
    for thread in threads:
        thread.join()
    assert sorted(resp.status_code for resp in results) == [200, 200]
    assert len({resp.json()["pid"] for resp in results}) == 2  # two workers: the limit is not per process
    assert held_load_slots(db_cursor, uid) == 0
    assert session.get(server.url + "/async_lab/cpu?n=10", timeout=30).status_code == 200
