# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Role detection in the other two setups of the process map.

* threaded mode (``workers = 0``): one process, whose HTTP, cron and job
  runner threads are listed as threads of its row;
* two prefork servers sharing one database: each master keeps its own tree.
"""

import collections
import os
import signal
import socket
from datetime import timedelta

import psutil

WORKER_CLASS_ROLES = {"WorkerHTTP": "http", "WorkerCron": "cron", "WorkerJobRunner": "jobrunner"}


def alive_rows(cr, master_pid):
    """{role: {pid, ...}} of the alive rows under ``master_pid``."""
    cr.execute(
        "SELECT role, pid FROM async_lab_worker WHERE master_pid = %s AND state = 'alive'",
        [master_pid],
    )
    roles = collections.defaultdict(set)
    for role, pid in cr.fetchall():
        roles[role].add(pid)
    return roles


def db_now(cr):
    cr.execute("SELECT now() AT TIME ZONE 'UTC'")
    return cr.fetchone()[0]


# -- threaded mode -------------------------------------------------------------
def test_threaded_mode_is_one_process_with_typed_threads(make_server, db_cursor):
    server = make_server(workers=0, max_cron_threads=1)
    me = server.session().get(server.url + "/async_lab/whoami", timeout=30).json()
    assert (me["mode"], me["role"]) == ("threaded", "threaded"), me
    assert me["pid"] == me["master_pid"] == server.pid, (me, server.pid)
    assert me["thread"].startswith("odoo.service.http.request."), me
    assert server.children() == [], "a threaded server forks nothing"
    create_time = psutil.Process(server.pid).create_time()

    def own_row():
        db_cursor.execute(
            """SELECT id, role, master_pid, requests, threads, last_seen FROM async_lab_worker
                WHERE pid = %s AND abs(create_time - %s) < 0.01 AND state = 'alive'""",
            [server.pid, create_time],
        )
        rows = db_cursor.fetchall()
        assert len(rows) <= 1, rows
        return rows[0] if rows else None

    # A request thread lives as long as its connection: hold one open (no
    # request sent) so that a heartbeat sees it next to the cron thread.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30):

        def row_with_http_and_cron_threads():
            row = own_row()
            types = {t["type"] for t in (row and row[4]) or []}
            return {"http", "cron"} <= types and row

        row = server.wait_for(
            row_with_http_and_cron_threads, timeout=30, what="the threaded row listing an http and a cron thread"
        )
    _id, role, master_pid, requests_served, threads, _last_seen = row
    assert (role, master_pid) == ("threaded", server.pid)
    assert requests_served >= 2, "authenticate and whoami were counted: %s" % requests_served
    by_type = collections.defaultdict(list)
    for thread in threads:
        by_type[thread["type"]].append(thread["name"])
        if thread["type"]:
            assert thread["role"] == thread["type"], thread
    assert by_type["cron"] == ["odoo.service.cron.cron0"], threads  # max_cron_threads = 1
    assert all(name.startswith("odoo.service.http.request.") for name in by_type["http"]), threads
    by_role = collections.Counter(t["role"] for t in threads)
    # The listener and queue_job's runner thread (server-wide) have no type.
    assert "odoo.service.httpd" in {t["name"] for t in threads if t["role"] == "http"}, threads
    assert by_role["jobrunner"] == 1, threads
    request_idents = {t["ident"] for t in threads if t["type"] == "http"}

    # The list is live: once the connection is closed, its thread is gone.
    closed_at = db_now(db_cursor) + timedelta(seconds=1)

    def next_beat():
        later = own_row()
        return later and later[5] > closed_at and later

    later = server.wait_for(next_beat, timeout=15, what="the next heartbeat")
    assert not request_idents & {t["ident"] for t in later[4] if t["type"] == "http"}, later[4]

    # One process, one row: no master, worker or gevent row for this server.
    db_cursor.execute(
        "SELECT pid, role, state FROM async_lab_worker WHERE master_pid = %s AND (pid != %s OR role != 'threaded')",
        [server.pid, server.pid],
    )
    assert db_cursor.fetchall() == []

    # A graceful stop (SIGTERM) is not a crash: the row says so, and it is
    # gone since its last heartbeat.
    server.stop()
    db_cursor.execute("SELECT state, exit_reason, gone_at = last_seen FROM async_lab_worker WHERE id = %s", [_id])
    assert db_cursor.fetchone() == ("gone", "server_stop", True)


# -- two servers, one database -----------------------------------------------------
def test_two_servers_on_one_database_keep_their_own_trees(make_server, db_cursor):
    started = db_now(db_cursor)
    # Both run a job runner on the database: the second loses queue_job's
    # advisory-lock election and waits, which is the normal multi-node setup.
    servers = [make_server(workers=2, max_cron_threads=1) for _i in range(2)]
    a, b = servers

    for server in servers:
        session = server.session()
        for _i in range(4):
            me = session.get(server.url + "/async_lab/whoami", timeout=30).json()
            assert (me["master_pid"], me["role"], me["mode"]) == (server.pid, "http", "prefork"), me
            assert me["pid"] in {c.pid for c in server.children()}, me

    def both_complete():
        trees = [alive_rows(db_cursor, server.pid) for server in servers]
        ok = all(
            tree["master"] == {server.pid} and len(tree["http"]) >= 2 and tree["cron"] and tree["jobrunner"]
            for server, tree in zip(servers, trees, strict=True)
        )
        return ok and trees

    trees = a.wait_for(both_complete, timeout=45, what="a complete tree per master in the registry")
    assert not trees[0]["http"] & trees[1]["http"]
    for server, tree in zip(servers, trees, strict=True):
        children = {c.pid for c in server.children()}
        announced = server.workers_from_log()
        for role, pids in tree.items():
            if role == "master":
                continue
            # Every row under this master is one of its own children, and a
            # worker's role is the class it announced in this server's log.
            assert pids <= children, (role, pids, children)
            if role in WORKER_CLASS_ROLES.values():
                assert {WORKER_CLASS_ROLES.get(announced.get(pid)) for pid in pids} == {role}, (role, pids, announced)

    victim = min(trees[0]["http"])
    os.kill(victim, signal.SIGKILL)

    def respawn_recorded():
        db_cursor.execute(
            "SELECT master_pid, new_pid, role, reason FROM async_lab_respawn WHERE old_pid = %s AND gone_at >= %s",
            [victim, started],
        )
        return db_cursor.fetchall()

    rows = a.wait_for(respawn_recorded, timeout=30, what="the respawn of the killed HTTP worker of A")
    assert len(rows) == 1, rows
    master_pid, new_pid, role, reason = rows[0]
    assert (master_pid, role, reason) == (a.pid, "http", "killed")
    assert new_pid in {c.pid for c in a.children()} and new_pid not in trees[0]["http"], (new_pid, trees[0])
    # Nothing happened to B: no respawn under its master, same HTTP workers.
    db_cursor.execute(
        "SELECT old_pid, new_pid FROM async_lab_respawn WHERE master_pid = %s AND gone_at >= %s", [b.pid, started]
    )
    assert db_cursor.fetchall() == []
    assert alive_rows(db_cursor, b.pid)["http"] == trees[1]["http"]
    db_cursor.execute(
        "SELECT master_pid, state FROM async_lab_worker WHERE pid = %s AND gone_at >= %s", [victim, started]
    )
    assert db_cursor.fetchall() == [(a.pid, "gone")]
