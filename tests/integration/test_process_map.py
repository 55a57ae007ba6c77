# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The process registry against a real prefork server (workers=2)."""

import collections
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import requests


def registry_rows(cr, master_pid):
    cr.execute(
        """SELECT pid, role, state, requests, self_reported FROM async_lab_worker
            WHERE master_pid = %s OR pid = %s ORDER BY pid""",
        [master_pid, master_pid],
    )
    return cr.fetchall()


def alive_by_role(cr, master_pid):
    roles = collections.defaultdict(set)
    for pid, role, state, _requests, _self in registry_rows(cr, master_pid):
        if state == "alive":
            roles[role].add(pid)
    return roles


def test_whoami_spreads_over_http_workers(make_server):
    server = make_server(workers=2, max_cron_threads=1)
    session = server.session()
    cookies = session.cookies.get_dict()

    def call(_):
        # A new connection each time, so any idle worker may accept it.
        resp = requests.get(
            server.url + "/async_lab/whoami", cookies=cookies, headers={"Connection": "close"}, timeout=30
        )
        resp.raise_for_status()
        return resp.json()

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(call, range(20)))
    pids = {a["pid"] for a in answers}
    assert len(pids) >= 2, "all 20 requests served by %s" % pids
    assert {a["master_pid"] for a in answers} == {server.pid}
    assert {a["role"] for a in answers} == {"http"}
    assert {a["mode"] for a in answers} == {"prefork"}
    assert all(a["thread"].startswith("Worker WorkerHTTP") for a in answers)
    # Anonymous: no data.
    anon = requests.get(server.url + "/async_lab/whoami", allow_redirects=False, timeout=30)
    assert anon.status_code in (302, 303, 401, 403) and "master_pid" not in anon.text


def test_registry_lists_roles_and_records_respawn(make_server, db_cursor):
    server = make_server(workers=2, max_cron_threads=1)
    announced = server.workers_from_log

    def complete():
        roles = alive_by_role(db_cursor, server.pid)
        ok = len(roles["http"]) >= 2 and len(roles["cron"]) >= 1 and len(roles["jobrunner"]) >= 1
        return ok and roles

    roles = server.wait_for(complete, timeout=90, what="2 http, 1 cron, 1 jobrunner alive in the registry")
    assert server.pid in roles["master"]
    # The registry's roles are the ones the workers announced in the log.
    log_roles = {"WorkerHTTP": "http", "WorkerCron": "cron", "WorkerJobRunner": "jobrunner"}
    for pid, cls in announced().items():
        if pid in set().union(*roles.values()):
            assert pid in roles[log_roles[cls]], (pid, cls, dict(roles))

    victim = sorted(roles["http"])[0]
    os.kill(victim, signal.SIGKILL)

    def respawned():
        db_cursor.execute(
            "SELECT state, exit_reason FROM async_lab_worker WHERE pid = %s AND master_pid = %s", [victim, server.pid]
        )
        victim_row = db_cursor.fetchone()
        fresh = alive_by_role(db_cursor, server.pid)["http"] - roles["http"]
        db_cursor.execute(
            "SELECT new_pid, reason, role FROM async_lab_respawn WHERE old_pid = %s AND master_pid = %s",
            [victim, server.pid],
        )
        respawn = db_cursor.fetchone()
        return victim_row and victim_row[0] == "gone" and fresh and respawn and (victim_row, fresh, respawn)

    victim_row, fresh, respawn = server.wait_for(respawned, timeout=30, what="gone + new HTTP PID + respawn")
    assert victim_row == ("gone", "killed")
    assert respawn[0] in fresh, (victim, respawn, fresh, registry_rows(db_cursor, server.pid), dict(roles))
    assert respawn[1:] == ("killed", "http")
