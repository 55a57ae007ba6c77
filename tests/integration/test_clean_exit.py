# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""A clean exit is not a crash (issue 17, item 4), on a real prefork server.

A process that ends through one of Odoo's own paths (limit_request, a SIGINT
recycle, the master's graceful stop or reload) says why before it goes; only a
process that vanished without a word reads "killed". Every gone row shows the
last moment it was seen alive as its "Gone At".
"""

import collections
import os
import re
import signal
import time

import requests


def rows(cr, master_pid):
    cr.execute(
        """SELECT pid, role, state, exit_reason, last_seen, gone_at FROM async_lab_worker
            WHERE master_pid = %s ORDER BY pid""",
        [master_pid],
    )
    return {
        pid: dict(role=role, state=state, reason=reason, last_seen=last, gone_at=gone)
        for pid, role, state, reason, last, gone in cr.fetchall()
    }


def alive_by_role(cr, master_pid):
    roles = collections.defaultdict(set)
    for pid, row in rows(cr, master_pid).items():
        if row["state"] == "alive":
            roles[row["role"]].add(pid)
    return roles


def wait_tree(server, cr, http=2):
    def complete():
        roles = alive_by_role(cr, server.pid)
        ok = len(roles["http"]) >= http and roles["cron"] and roles["jobrunner"] and roles["master"]
        return ok and roles

    return server.wait_for(complete, timeout=90, what="the whole tree alive in the registry")


def gone(cr, master_pid, pid):
    row = rows(cr, master_pid).get(pid)
    return row if row and row["state"] == "gone" else None


def test_recycles_and_graceful_stop_are_not_crashes(make_server, db_cursor):
    server = make_server(workers=2, max_cron_threads=1, options={"limit_request": 40})
    roles = wait_tree(server, db_cursor)

    # A recycle by SIGINT: the worker ends its loop and says so.
    recycled = min(roles["http"])
    os.kill(recycled, signal.SIGINT)
    row = server.wait_for(lambda: gone(db_cursor, server.pid, recycled), timeout=30, what="the recycled worker gone")
    assert row["reason"] == "stopped", row

    # limit_request: each worker recycles itself after 40 requests.
    def request_limit_seen():
        for _i in range(20):
            requests.get(server.url + "/web/health", headers={"Connection": "close"}, timeout=10)
        return [pid for pid, r in rows(db_cursor, server.pid).items() if r["reason"] == "request_limit"]

    limited = server.wait_for(request_limit_seen, timeout=60, interval=0, what="a worker past limit_request")
    # Its reason can show one heartbeat before its last note marks it gone.
    server.wait_for(
        lambda: all(rows(db_cursor, server.pid)[pid]["state"] == "gone" for pid in limited),
        timeout=30,
        what="the recycled workers gone",
    )

    # A worker that vanishes without a word is the only "killed" one.
    roles = wait_tree(server, db_cursor)
    killed = max(roles["http"])
    os.kill(killed, signal.SIGKILL)
    row = server.wait_for(lambda: gone(db_cursor, server.pid, killed), timeout=30, what="the killed worker gone")
    assert row["reason"] == "killed", row

    def respawns():
        db_cursor.execute("SELECT old_pid, reason FROM async_lab_respawn WHERE master_pid = %s", [server.pid])
        found = dict(db_cursor.fetchall())
        return {recycled, killed} <= set(found) and found

    found = server.wait_for(respawns, timeout=30, what="the respawns of the recycled and the killed worker")
    assert (found[recycled], found[killed]) == ("stopped", "killed"), found

    # The master's graceful stop (SIGTERM): every process of its tree says so.
    roles = wait_tree(server, db_cursor)
    before_stop = {pid for pids in roles.values() for pid in pids}
    server.stop()
    after = rows(db_cursor, server.pid)
    assert before_stop <= set(after)
    # A worker that reached limit_request just before (Odoo ends its loop only after its
    # next sleep, up to a beat later) truly ended by its limit.
    at_limit = {int(pid) for pid in re.findall(r"Worker \((\d+)\) max request", server.log())}
    for pid in before_stop:
        assert after[pid]["state"] == "gone", (pid, after[pid])
        expected = "request_limit" if pid in at_limit else "server_stop"
        assert after[pid]["reason"] == expected, (pid, after[pid])
    assert before_stop - at_limit, "no process left to show the graceful stop"
    # Gone At is the last moment each was seen alive, never when someone noticed.
    for pid, row in after.items():
        if row["state"] == "gone":
            assert row["gone_at"] == row["last_seen"], (pid, row)

    # A new server on the same database leaves the old rows as they were.
    time.sleep(1)
    again = make_server(workers=1, max_cron_threads=1)
    wait_tree(again, db_cursor, http=1)
    assert rows(db_cursor, server.pid) == after


def test_reload_keeps_the_master_and_notes_its_children(make_server, db_cursor):
    server = make_server(workers=1, max_cron_threads=1)
    roles = wait_tree(server, db_cursor, http=1)
    children = {pid for role, pids in roles.items() if role != "master" for pid in pids}
    os.kill(server.pid, signal.SIGHUP)

    def reloaded():
        now = alive_by_role(db_cursor, server.pid)
        fresh = now["http"] - roles["http"]
        return fresh and now["master"] == {server.pid} and now

    server.wait_for(reloaded, timeout=120, what="a new HTTP worker under the same master")
    after = rows(db_cursor, server.pid)
    for pid in children:
        assert (after[pid]["state"], after[pid]["reason"]) == ("gone", "server_reload"), (pid, after[pid])
    assert after[server.pid]["reason"] is None, after[server.pid]
