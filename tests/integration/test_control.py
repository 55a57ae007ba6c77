# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Server controls against real prefork servers: each action and what it does to the process tree.

The HTTP workers of a server are counted from outside: the master's live
children that announced themselves as ``WorkerHTTP`` in the log.
"""

import os
import socket

import psutil
from odoo_server import ensure_user, rpc

SETTLE = 60  # seconds: a heartbeat picks the action up (5 s), the master forks or reaps (4 s beat)


def http_children(server):
    """PIDs of the master's live HTTP workers."""
    announced = server.workers_from_log()
    pids = set()
    for child in server.children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and announced.get(child.pid) == "WorkerHTTP":
                pids.add(child.pid)
        except psutil.Error:
            continue
    return pids


def node_label(server, session):
    """The node of ``server`` as the advisor (and the dashboard) names it, once its processes report."""

    def found():
        hosts = session.get(server.url + "/async_lab/advice", timeout=30).json()["hosts"]
        return next((h["host"] for h in hosts if h["master_pid"] == server.pid), None)

    return server.wait_for(found, timeout=90, what="node of master %s in the advice" % server.pid)


def registry_ready(server, db_cursor, http=2):
    """Wait until the registry knows the master and ``http`` live HTTP workers of ``server``."""

    def ready():
        db_cursor.execute(
            """SELECT count(*) FILTER (WHERE role = 'http' AND pid = ANY(%s)),
                      count(*) FILTER (WHERE role = 'master' AND pid = %s)
                 FROM async_lab_worker WHERE state = 'alive' AND master_pid = %s""",
            [list(http_children(server)), server.pid, server.pid],
        )
        http_rows, master_rows = db_cursor.fetchone()
        return http_rows >= http and master_rows == 1

    server.wait_for(ready, timeout=90, what="%d HTTP workers and the master in the registry" % http)


def request(server, session, **body):
    resp = session.post(server.url + "/async_lab/control", json=body, timeout=30)
    assert resp.status_code == 202, resp.text
    created = resp.json()
    assert created["status_url"] == "/async_lab/control/%d" % created["id"]
    return created


def wait_done(server, session, created):
    def finished():
        resp = session.get(server.url + created["status_url"], timeout=30)
        assert resp.status_code == 200, resp.text
        status = resp.json()
        return status["state"] not in ("pending", "running") and status

    status = server.wait_for(finished, timeout=SETTLE, what="control %s carried out" % created["id"])
    assert status["state"] == "done", status
    return status


def respawn_of(db_cursor, server, pid):
    db_cursor.execute(
        "SELECT new_pid, reason FROM async_lab_respawn WHERE old_pid = %s AND master_pid = %s", [pid, server.pid]
    )
    return db_cursor.fetchone()


def test_each_action_changes_the_real_process_tree(make_server, db_cursor):
    server = make_server(workers=2, max_cron_threads=1)
    admin = server.session()
    manager = ensure_user(server, admin, "control_manager", "base.group_user", "async_lab.async_lab_group_manager")
    registry_ready(server, db_cursor)
    node = node_label(server, manager)
    assert len(http_children(server)) == 2

    # + HTTP worker: the master forks a third.
    status = wait_done(server, manager, request(server, manager, action="add_http_worker", node=node))
    assert "SIGTTIN" in status["result"] and status["requested_by"] == "control_manager"
    assert psutil.Process(status["executed_by_pid"]).ppid() == server.pid
    server.wait_for(lambda: len(http_children(server)) == 3, timeout=SETTLE, what="3 HTTP workers")
    registry_ready(server, db_cursor, http=3)

    # − HTTP worker: one stops, and the master does not replace it.
    status = wait_done(server, manager, request(server, manager, action="remove_http_worker", node=node))
    removed = status["pid"]
    server.wait_for(lambda: removed not in http_children(server), timeout=SETTLE, what="worker %s gone" % removed)
    server.wait_for(lambda: len(http_children(server)) == 2, timeout=SETTLE, what="2 HTTP workers")
    registry_ready(server, db_cursor, http=2)
    assert len(http_children(server)) == 2, "the removed worker was replaced"

    # Recycle: the worker ends (SIGINT), a new one takes its place, the respawn says "stopped".
    before = http_children(server)
    victim = min(before)
    status = wait_done(server, manager, request(server, manager, action="recycle", pid=victim))
    assert "SIGINT" in status["result"]
    server.wait_for(
        lambda: victim not in http_children(server) and len(http_children(server)) == 2,
        timeout=SETTLE,
        what="worker %s replaced" % victim,
    )
    new_pid, reason = server.wait_for(lambda: respawn_of(db_cursor, server, victim), timeout=SETTLE, what="respawn")
    assert reason == "stopped" and new_pid in http_children(server) - before

    # Kill: SIGKILL, a new PID, the respawn says "killed", and the control's status shows it.
    before = http_children(server)
    victim = min(before)
    created = request(server, manager, action="kill", pid=victim)
    wait_done(server, manager, created)
    new_pid, reason = server.wait_for(lambda: respawn_of(db_cursor, server, victim), timeout=SETTLE, what="respawn")
    assert reason == "killed" and new_pid in http_children(server) - before
    status = manager.get(server.url + created["status_url"], timeout=30).json()
    assert status["respawn"] == {"old_pid": victim, "new_pid": new_pid, "reason": "killed"}

    # Every action recorded, on the process log.
    db_cursor.execute("SELECT action, state FROM async_lab_control WHERE master_pid = %s ORDER BY id", [server.pid])
    assert db_cursor.fetchall() == [
        ("add_http_worker", "done"),
        ("remove_http_worker", "done"),
        ("recycle", "done"),
        ("kill", "done"),
    ]
    assert "Traceback" not in server.log(), server.log()[-3000:]


def test_refused_actions_signal_nothing(make_server, db_cursor):
    server = make_server(workers=1, max_cron_threads=0)
    admin = server.session()
    user = ensure_user(server, admin, "control_user", "base.group_user", "async_lab.async_lab_group_user")
    manager = ensure_user(server, admin, "control_manager", "base.group_user", "async_lab.async_lab_group_manager")
    registry_ready(server, db_cursor, http=1)
    node = node_label(server, manager)
    (worker,) = http_children(server)
    url = server.url + "/async_lab/control"

    resp = user.post(url, json={"action": "kill", "pid": worker}, timeout=30)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    resp = manager.post(url, json={"action": "kill", "pid": os.getpid()}, timeout=30)  # outside the tree
    assert resp.status_code == 404, resp.text
    resp = manager.post(url, json={"action": "kill", "pid": server.pid}, timeout=30)  # the master
    assert resp.status_code == 409 and "is a master" in resp.json()["error"]["message"]
    resp = manager.post(url, json={"action": "remove_http_worker", "node": node}, timeout=30)  # the last one
    assert resp.status_code == 409 and "at least one" in resp.json()["error"]["message"]
    assert http_children(server) == {worker} and psutil.pid_exists(server.pid)
    db_cursor.execute("SELECT count(*) FROM async_lab_control WHERE master_pid = %s", [server.pid])
    assert db_cursor.fetchone()[0] == 0  # nothing reached the node
    # Each refusal is in the log all the same: who, what, why.
    db_cursor.execute(
        """SELECT c.action, c.pid, u.login, split_part(c.error, ':', 1) FROM async_lab_control c
             JOIN res_users u ON u.id = c.user_id
            WHERE c.state = 'refused' AND c.master_pid IS NULL ORDER BY c.id DESC LIMIT 4"""
    )
    assert db_cursor.fetchall()[::-1] == [
        ("kill", worker, "control_user", "HTTP 403"),
        ("kill", os.getpid(), "control_manager", "HTTP 404"),
        ("kill", server.pid, "control_manager", "HTTP 409"),
        ("remove_http_worker", None, "control_manager", "HTTP 409"),
    ]


def test_an_action_travels_to_the_node_that_owns_the_process(make_server, db_cursor):
    """Two servers on one database, two nodes on one host: asked through A, carried out by B."""
    a = make_server(workers=1, max_cron_threads=0)
    b = make_server(workers=1, max_cron_threads=0, options={"async_lab_node": "node-b"})
    admin = a.session()
    manager = ensure_user(a, admin, "control_manager", "base.group_user", "async_lab.async_lab_group_manager")
    registry_ready(a, db_cursor, http=1)
    registry_ready(b, db_cursor, http=1)
    assert node_label(b, manager) == "node-b"
    assert node_label(a, manager) in (socket.gethostname(), "%s (master %s)" % (socket.gethostname(), a.pid))

    # B's only HTTP worker is killed through A: B's worker carries it out on itself (recorded first).
    (victim,) = http_children(b)
    a_workers = http_children(a)
    status = wait_done(a, manager, request(a, manager, action="kill", pid=victim, node="node-b"))
    assert status["executed_by_pid"] == victim and status["node"] == "node-b"
    b.wait_for(lambda: http_children(b) and victim not in http_children(b), timeout=SETTLE, what="B respawns")
    assert http_children(a) == a_workers

    # + HTTP worker on B, asked through A.
    registry_ready(b, db_cursor, http=1)
    status = wait_done(a, manager, request(a, manager, action="add_http_worker", node="node-b"))
    assert psutil.Process(status["executed_by_pid"]).ppid() == b.pid
    b.wait_for(lambda: len(http_children(b)) == 2, timeout=SETTLE, what="2 HTTP workers on B")
    assert http_children(a) == a_workers

    # The dashboard names both nodes, and one holds queue_job's runner lock.
    data = rpc(a, manager, "async_lab.dashboard", "get_data")
    servers = {s["master_pid"]: s for host in data["processes"] for s in host["servers"]}
    assert servers[b.pid]["node"] == "node-b"
    assert [s["holds_runner_lock"] for pid, s in servers.items() if pid in (a.pid, b.pid)].count(True) == 1


DASHBOARD = "/web#action=async_lab.async_lab_dashboard_action"
HTTP_ROWS = """[...document.querySelectorAll(
    '.o_async_lab_server[data-master-pid="%d"] .o_async_lab_process[data-role=http][data-state=alive]'
)].map((row) => Number(row.dataset.pid)).sort()"""


def click(browser, selector):
    browser.wait_for("!!document.querySelector(%r)" % selector, timeout=30, what=selector)
    browser.evaluate("document.querySelector(%r).click()" % selector)


def test_dashboard_buttons_with_a_confirmation(make_server, db_cursor):
    """A manager adds an HTTP worker and kills one from the process tree; a User sees no button."""
    # Imported here: only this test needs a browser.
    from cdp import Chromium

    server = make_server(workers=1, max_cron_threads=0)
    admin = server.session()
    user = ensure_user(server, admin, "control_user", "base.group_user", "async_lab.async_lab_group_user")
    registry_ready(server, db_cursor, http=1)
    node = node_label(server, admin)
    header = '.o_async_lab_node_header[data-node="%s"]' % node
    with Chromium() as browser:
        browser.set_cookie("session_id", user.cookies["session_id"], server.url)
        browser.navigate(server.url + DASHBOARD)
        browser.wait_for("!!document.querySelector(%r)" % header, timeout=60, what="the node's header")
        assert browser.evaluate("document.querySelectorAll('.o_async_lab_node_add, .o_async_lab_kill').length") == 0

    with Chromium() as browser:
        browser.set_cookie("session_id", admin.cookies["session_id"], server.url)
        browser.navigate(server.url + DASHBOARD)
        click(browser, header + " .o_async_lab_node_add")
        click(browser, ".modal-footer .btn-primary")  # the confirmation
        server.wait_for(lambda: len(http_children(server)) == 2, timeout=SETTLE, what="2 HTTP workers")
        page = server.wait_for(
            lambda: len(browser.evaluate(HTTP_ROWS % server.pid)) == 2 and browser.evaluate(HTTP_ROWS % server.pid),
            timeout=SETTLE,
            interval=1,
            what="2 HTTP workers on the page",
        )
        assert set(page) == http_children(server)

        victim = page[0]
        click(browser, '.o_async_lab_process[data-pid="%d"] .o_async_lab_kill' % victim)
        click(browser, ".modal-footer .btn-primary")
        server.wait_for(
            lambda: victim not in http_children(server) and len(http_children(server)) == 2,
            timeout=SETTLE,
            what="worker %d killed and replaced" % victim,
        )
        server.wait_for(
            lambda: set(browser.evaluate(HTTP_ROWS % server.pid)) == http_children(server),
            timeout=SETTLE,
            interval=1,
            what="the replacement on the page",
        )
    db_cursor.execute(
        """SELECT c.action, c.state, u.login FROM async_lab_control c JOIN res_users u ON u.id = c.user_id
            WHERE c.master_pid = %s ORDER BY c.id""",
        [server.pid],
    )
    assert db_cursor.fetchall() == [("add_http_worker", "done", "admin"), ("kill", "done", "admin")]
