# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import os
import socket
import time
from datetime import datetime

import psutil

from odoo.tests import TransactionCase, tagged

from ..lib import processes
from ..process_tracker import tracker
from .common import heartbeat_snapshot


@tagged("at_install", "-post_install")
class TestWorkerRegistry(TransactionCase):
    """Heartbeats, sweeps, respawns and pruning of async_lab.worker."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Worker = cls.env["async_lab.worker"]
        cls.host = socket.gethostname()
        cls.me = psutil.Process()

    def snap(self, **kw):
        return heartbeat_snapshot(self.env, **kw)

    def find(self, host, pid, create_time=None):
        domain = [("host", "=", host), ("pid", "=", pid)]
        if create_time is not None:  # a used database may hold older processes with this PID
            domain.append(("create_time", "=", create_time))
        return self.Worker.search(domain)

    def test_heartbeat_inserts_then_updates_one_row(self):
        self.Worker._heartbeat(self.snap())
        row = self.find("elsewhere", 4242)
        self.assertEqual(len(row), 1)
        self.assertEqual((row.role, row.state, row.requests, row.limit_time_real), ("http", "alive", 3, 120))
        self.assertEqual(row.name, "elsewhere:4242")
        first_seen = row.first_seen
        self.Worker._heartbeat(self.snap(requests=9, rss_mb=120.0))
        row.invalidate_recordset()
        self.assertEqual(len(self.find("elsewhere", 4242)), 1)
        self.assertEqual((row.requests, row.rss_mb, row.first_seen), (9, 120.0, first_seen))

    def test_dashboards_hear_of_a_process_that_comes_or_goes(self):
        sent = []
        self.patch(
            type(self.env["async_lab.stats"]),
            "_notify_dashboard",
            lambda _self, kind, payload=None: sent.append((kind, payload)),
        )
        self.Worker._heartbeat(self.snap())
        self.assertIn(("processes", {"change": "new", "pid": 4242}), sent)
        sent.clear()
        self.Worker._heartbeat(self.snap(requests=9))  # a known process: nothing new
        self.assertEqual([s for s in sent if s[0] == "processes"], [])
        # A local process that vanished: gone, and said so.
        dead = self.snap(host=self.host, pid=os.getpid(), create_time=self.me.create_time() - 50, master_pid=None)
        self.Worker._upsert(dead, self_reported=True)
        sent.clear()
        me = self.snap(host=self.host, pid=os.getpid(), create_time=self.me.create_time(), master_pid=os.getpid())
        self.Worker._upsert(me, self_reported=True)
        self.Worker._sweep_host(me, force=True)
        self.assertIn(("processes", {"change": "gone", "pid": os.getpid()}), sent)

    def test_reused_pid_is_another_process(self):
        self.Worker._heartbeat(self.snap())
        self.Worker._heartbeat(self.snap(create_time=2000.0))
        self.assertEqual(len(self.find("elsewhere", 4242)), 2)

    def test_sweep_marks_vanished_local_process_gone(self):
        # Our own PID with a create time that is not ours: that process is dead.
        dead = self.snap(
            host=self.host,
            pid=os.getpid(),
            create_time=self.me.create_time() - 50,
            master_pid=os.getpid(),
            busy_since=None,
        )
        self.Worker._upsert(dead, self_reported=True)
        row = self.find(self.host, os.getpid(), self.me.create_time() - 50)
        me = self.snap(host=self.host, pid=os.getpid(), create_time=self.me.create_time(), master_pid=os.getpid())
        self.Worker._upsert(me, self_reported=True)
        self.assertTrue(self.Worker._sweep_host(me, force=True))
        row.invalidate_recordset()
        self.assertEqual(row.state, "gone")
        self.assertEqual(row.exit_reason, "killed")
        alive = self.find(self.host, os.getpid(), self.me.create_time())
        self.assertEqual(alive.state, "alive")

    def test_watchdog_kill_is_told_apart(self):
        now = time.time()
        busy = self.snap(
            host=self.host,
            pid=os.getpid(),
            create_time=self.me.create_time() - 50,
            busy_since=now - 200,
            master_pid=os.getpid(),
        )
        self.Worker._upsert(busy, self_reported=True)
        self.Worker._sweep_host(self.snap(host=self.host, pid=os.getpid(), master_pid=os.getpid(), now=now), force=True)
        row = self.find(self.host, os.getpid(), self.me.create_time() - 50)
        self.assertEqual(row.exit_reason, "time_limit_real")

    def test_respawn_is_recorded_with_reason(self):
        now = time.time()
        old = self.snap(
            host=self.host,
            pid=os.getpid(),
            create_time=self.me.create_time() - 50,
            master_pid=os.getpid(),
            exit_reason="memory_limit",
            now=now - 3,
        )
        self.Worker._upsert(old, self_reported=True)
        new = self.snap(
            host=self.host, pid=os.getpid(), create_time=self.me.create_time(), master_pid=os.getpid(), now=now
        )
        self.Worker._upsert(new, self_reported=True)
        # Make the replacement look started after the death.
        self.env.cr.execute(
            "UPDATE async_lab_worker SET started_at = %s WHERE host = %s AND pid = %s AND create_time = %s",
            [datetime.utcfromtimestamp(now - 1), self.host, os.getpid(), self.me.create_time()],
        )
        self.Worker._pair_respawns(self.host, now)  # nothing gone yet
        ours = [("host", "=", self.host), ("master_pid", "=", os.getpid())]
        self.assertFalse(self.env["async_lab.respawn"].search(ours))
        self.env.cr.execute(
            "UPDATE async_lab_worker SET state = 'gone', gone_at = now() at time zone 'UTC' WHERE create_time = %s",
            [self.me.create_time() - 50],
        )
        self.Worker._pair_respawns(self.host, now)
        respawn = self.env["async_lab.respawn"].search(ours)
        self.assertEqual(len(respawn), 1)
        self.assertEqual((respawn.role, respawn.reason, respawn.old_pid), ("http", "memory_limit", os.getpid()))
        self.assertEqual(respawn.new_worker_id.replaces_id, respawn.old_worker_id)

    def test_other_hosts_age_and_prune(self):
        now = time.time()
        self.Worker._heartbeat(self.snap(host="far", pid=1, now=now - processes.STALE_AFTER - 5))
        self.Worker._heartbeat(self.snap(host="far", pid=2, now=now - processes.GONE_AFTER - 5))
        self.Worker._age_other_hosts(self.host, now)
        self.assertEqual(self.find("far", 1).state, "stale")
        self.assertEqual(self.find("far", 2).state, "gone")
        self.env["ir.config_parameter"].set_param("async_lab.process_retention_hours", 1)
        self.Worker._prune(now + 2 * 3600)
        self.assertFalse(self.find("far", 2))
        self.assertTrue(self.find("far", 1), "only gone rows are pruned")

    def test_cron_records_its_process_and_runs(self):
        cron = self.env.ref("async_lab.async_lab_worker_cron_refresh")
        self.assertEqual(cron.interval_type, "minutes")
        self.Worker._cron_refresh()
        # In the test runner (threaded mode) this process is a threaded server.
        me = self.find(self.host, os.getpid(), self.me.create_time())
        self.assertEqual(me.role, "threaded")
        self.assertTrue(me.threads, "threaded mode lists the process's threads")
        self.assertTrue(all({"name", "type", "role"} <= set(t) for t in me.threads), me.threads)
        typed = [t for t in me.threads if t["type"]]
        self.assertTrue(all(t["role"] == t["type"] for t in typed), typed)
        self.assertIn(self.env.cr.dbname, tracker.dbs)

    def test_counters_are_memory_only(self):
        before = dict(tracker.counts)
        with self.assertQueryCount(0):
            tracker.count("requests")
            tracker.request_started()
            tracker.request_done()
        self.assertEqual(tracker.counts["requests"], before["requests"] + 1)

    def test_replacement_killed_in_its_turn_is_paired(self):
        # A recycles, B replaces it and is killed before any sweep paired
        # them, C replaces B: two respawns, A -> B and B -> C.
        now = time.time()
        host = "pairing-test"
        for pid, started, seen, final in (
            (1, now - 100, now - 60, True),
            (2, now - 50, now - 40, True),
            (3, now - 30, now - 5, False),
        ):
            self.Worker._upsert(
                self.snap(host=host, pid=pid, create_time=started, now=seen), self_reported=True, final=final
            )
        self.Worker._pair_respawns(host, now)
        respawns = self.env["async_lab.respawn"].search([("host", "=", host)])
        self.assertEqual(sorted((r.old_pid, r.new_pid) for r in respawns), [(1, 2), (2, 3)])
