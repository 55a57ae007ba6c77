# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The dev config really gives a prefork server with every kind of child."""

import collections
import time

import psutil


def test_prefork_tree_and_clean_stop(make_server):
    server = make_server(workers=3, max_cron_threads=1)

    def tree_complete():
        kinds = collections.Counter(server.workers_from_log().values())
        ready = "queue job runner ready for db %s" % server.db in server.log()
        return kinds["WorkerHTTP"] >= 3 and kinds["WorkerCron"] >= 1 and kinds["WorkerJobRunner"] and ready

    server.wait_for(tree_complete, timeout=60, what="3 HTTP, 1 cron worker and the job runner")
    announced = server.workers_from_log()
    children = {proc.pid: proc for proc in server.children()}
    # Every announced worker is a live child of the master we started.
    for pid, cls in announced.items():
        assert pid in children, "%s %s is not a child of master %s" % (cls, pid, server.pid)
    assert sorted(announced.values()).count("WorkerHTTP") >= 3
    assert list(announced.values()).count("WorkerCron") == 1
    assert list(announced.values()).count("WorkerJobRunner") == 1
    # The websocket process is exec'd, not forked: it is the one child with "gevent".
    gevent = [p for p in children.values() if "gevent" in p.cmdline()]
    assert len(gevent) == 1

    everything = list(children.values())
    server.stop()
    assert server.proc.returncode is not None
    deadline = time.monotonic() + 10

    def alive(process):
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE

    while time.monotonic() < deadline and any(alive(p) for p in everything):
        time.sleep(0.2)
    survivors = [p.pid for p in everything if alive(p)]
    assert not survivors, "children survived the master: %s" % survivors
