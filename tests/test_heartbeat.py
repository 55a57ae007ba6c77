# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import contextlib
import os
import threading
import time
from unittest import mock

import psycopg2
import psycopg2.errors

from odoo.service import server as odoo_server
from odoo.sql_db import Cursor
from odoo.tests import BaseCase, TransactionCase, tagged

from odoo.addons.queue_job.job import Job

from .. import process_tracker
from ..lib import processes
from ..process_tracker import ProcessTracker, in_own_transaction

TRANSIENT = [
    psycopg2.errors.SerializationFailure("could not serialize access due to concurrent update"),
    psycopg2.errors.DeadlockDetected("deadlock detected"),
    psycopg2.errors.LockNotAvailable("could not obtain lock on row"),
    psycopg2.errors.UniqueViolation("duplicate key value violates unique constraint"),
    psycopg2.OperationalError("server closed the connection unexpectedly"),
    psycopg2.InterfaceError("connection already closed"),
]


def fails_twice(error, attempts):
    """A unit of work that raises ``error`` on its first two attempts; ``attempts`` records the cursors."""

    def work(cr):
        attempts.append(cr)
        if len(attempts) < 3:
            raise error
        return "written"

    return work


class FakeRegistry:
    """registry.cursor() without a database: enough for in_own_transaction."""

    def __init__(self):
        self.levels = []

    @contextlib.contextmanager
    def cursor(self):
        cr = mock.Mock(spec=Cursor)  # a real cursor, not a test's: its isolation level is set
        cr.connection = mock.Mock()
        cr.connection.set_isolation_level.side_effect = self.levels.append
        yield cr


@tagged("at_install", "-post_install")
class TestHeartbeatGuard(TransactionCase):
    """The heartbeat outlives every error and retries the transient ones."""

    def test_busy_emptied_between_test_and_min(self):
        # The last request ends between "if self.busy" and "min(...)".
        class Emptied(dict):
            def __bool__(self):
                return True

        tracker = ProcessTracker()
        tracker.busy = Emptied()
        self.assertIsNone(tracker.snapshot()["busy_since"])
        tracker.busy = {1: 50.0, 2: 40.0}
        self.assertEqual(tracker.snapshot()["busy_since"], 40.0)

    def test_beat_survives_any_error(self):
        tracker = ProcessTracker()
        with (
            mock.patch.object(ProcessTracker, "flush", side_effect=RuntimeError("boom")),
            self.assertLogs("odoo.addons.async_lab.process_tracker", "WARNING") as logs,
        ):
            tracker.beat()
            tracker.beat()
        self.assertEqual(tracker.failures, 2)
        self.assertEqual(len(logs.records), 1, "logged once, not on every beat")
        self.assertIsNotNone(logs.records[0].exc_info, "an unexpected error keeps its traceback")

    def test_thread_goes_on_after_errors(self):
        tracker = ProcessTracker()
        calls = []
        third = threading.Event()

        def flush(now=None):
            calls.append(now)
            if len(calls) < 3:
                raise (ValueError if len(calls) == 1 else psycopg2.OperationalError)("beat %d" % len(calls))
            third.set()

        with (
            mock.patch.object(tracker, "flush", flush),
            mock.patch.object(process_tracker, "FIRST_BEAT_DELAY", 0),
            mock.patch.object(processes, "HEARTBEAT_INTERVAL", 0.01),
            self.assertLogs("odoo.addons.async_lab.process_tracker", "WARNING"),
        ):
            tracker.start()
            try:
                self.assertTrue(third.wait(30), "the thread died after %d beats" % len(calls))
                self.assertTrue(tracker.thread.is_alive())
            finally:
                tracker.stop_event.set()
                tracker.thread.join(10)

    def test_each_transient_error_is_retried_with_backoff(self):
        registry = FakeRegistry()
        sleeps = []
        for error in TRANSIENT:
            with self.subTest(error=type(error).__name__):
                attempts = []
                sleeps.clear()
                work = fails_twice(error, attempts)
                self.assertEqual(in_own_transaction(registry, work, sleep=sleeps.append), "written")
                self.assertEqual(len(attempts), 3)
                self.assertEqual(len(sleeps), 2)
                self.assertLess(sleeps[0], sleeps[1], "backoff grows")
        # Every attempt ran at READ COMMITTED.
        self.assertEqual(set(registry.levels), {psycopg2.extensions.ISOLATION_LEVEL_READ_COMMITTED})

    def test_retries_end_and_other_errors_are_not_retried(self):
        registry = FakeRegistry()
        attempts = []

        def always(cr):
            attempts.append(cr)
            raise TRANSIENT[1]

        with self.assertRaises(psycopg2.errors.DeadlockDetected):
            in_own_transaction(registry, always, attempts=3, sleep=lambda s: None)
        self.assertEqual(len(attempts), 3)
        attempts.clear()

        def bug(cr):
            attempts.append(cr)
            raise psycopg2.ProgrammingError("column does not exist")

        with self.assertRaises(psycopg2.ProgrammingError):
            in_own_transaction(registry, bug, sleep=lambda s: None)
        self.assertEqual(len(attempts), 1)

    def test_failed_database_is_logged_without_traceback_and_resumes(self):
        tracker = ProcessTracker()
        tracker.dbs = {self.env.cr.dbname}
        tracker.tracked_registry = lambda dbname: self.env.registry  # ready or not (at_install)
        tracker._still_installed = lambda registry, dbname: True
        with (
            mock.patch.object(process_tracker, "in_own_transaction", side_effect=TRANSIENT[4]),
            self.assertLogs("odoo.addons.async_lab.process_tracker", "WARNING") as logs,
        ):
            tracker.flush()
        self.assertEqual(tracker.failures, 1)
        self.assertFalse(logs.records[0].exc_info)
        self.assertIn("server closed the connection", logs.output[0])
        with (
            mock.patch.object(process_tracker, "in_own_transaction"),
            mock.patch.object(process_tracker._logger, "info") as info,
        ):
            tracker.flush()
        self.assertEqual(tracker.failures, 0)
        info.assert_called_once()
        self.assertIn("resumed", info.call_args.args[0])

    def test_conflicting_heartbeat_commits_without_error_log(self):
        """A sweeper updates a process's row after the heartbeat's transaction
        began: at Odoo's REPEATABLE READ that is "could not serialize access"
        and a "bad query" ERROR; the heartbeat's transaction commits it."""
        host = "async_lab-test-conflict-%d" % os.getpid()
        snap = {
            "host": host,
            "pid": 4242,
            "master_pid": 4000,
            "role": "http",
            "create_time": 1000.0,
            "now": time.time(),
            "requests": 1,
            "db": self.env.cr.dbname,
            "limits": {},
        }
        registry = self.env.registry

        def sweeper_update():
            with registry.cursor() as other:
                other.execute("UPDATE async_lab_worker SET state = 'stale' WHERE host = %s", [host])

        def heartbeat(cr):
            cr.execute("SELECT 1")  # the transaction's snapshot, at REPEATABLE READ
            sweeper_update()
            return process_tracker.worker_model(cr)._report(dict(snap, requests=2))

        try:
            in_own_transaction(registry, lambda cr: process_tracker.worker_model(cr)._report(snap))
            with self.assertNoLogs("odoo.sql_db", "ERROR"):
                in_own_transaction(registry, heartbeat, attempts=1)
            with registry.cursor() as cr:
                cr.execute("SELECT requests, state FROM async_lab_worker WHERE host = %s", [host])
                self.assertEqual(cr.fetchall(), [(2, "alive")])
        finally:
            with registry.cursor() as cr:
                cr.execute("DELETE FROM async_lab_worker WHERE host = %s", [host])

    def test_last_note_is_final(self):
        """A process's last note marks its row gone at its last moment seen
        alive, and a heartbeat still in flight changes nothing after it."""
        Worker = self.env["async_lab.worker"]
        now = time.time()
        snap = {
            "host": "elsewhere",
            "pid": 4343,
            "master_pid": 4000,
            "role": "http",
            "create_time": 1000.0,
            "now": now,
            "requests": 5,
            "db": self.env.cr.dbname,
            "limits": {},
        }
        Worker._report(snap)
        Worker._report(dict(snap, now=now + 1, requests=6, exit_reason="request_limit"), final=True)
        self.assertIsNone(Worker._report(dict(snap, now=now + 2, requests=7)))
        row = Worker.search([("host", "=", "elsewhere"), ("pid", "=", 4343)])
        self.assertEqual((row.state, row.exit_reason, row.requests), ("gone", "request_limit", 6))
        self.assertEqual(row.gone_at, row.last_seen)


@tagged("at_install", "-post_install")
class TestPatchServer(BaseCase):
    """The manifest's post_load applied the server patches, and only once."""

    PATCHED = {
        odoo_server.Worker: ("check_limits", "signal_time_expired_handler", "_runloop", "stop"),
        odoo_server.GeventServer: ("process_limits",),
        odoo_server.PreforkServer: ("stop",),
        odoo_server.ThreadedServer: ("stop",),
        Job: ("perform",),
    }

    def methods(self):
        return {(cls, name): cls.__dict__[name] for cls, names in self.PATCHED.items() for name in names}

    def test_post_load_patched_the_server(self):
        for (cls, name), method in self.methods().items():
            self.assertEqual(method.__module__, process_tracker.__name__, f"{cls.__name__}.{name}")

    def test_patching_again_changes_nothing(self):
        # pytest-odoo imports the addon without its post_load: patch once first, as the server did.
        process_tracker.patch_server()
        before = self.methods()
        with mock.patch.object(os, "register_at_fork") as register_at_fork:
            process_tracker.patch_server()
        register_at_fork.assert_not_called()
        self.assertEqual(self.methods(), before)
