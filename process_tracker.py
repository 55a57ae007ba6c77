# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Per-process bookkeeping: counters in memory, a heartbeat in its own cursor.

Every Odoo process that loads async_lab has one :data:`tracker`. The request,
job and cron hooks only bump in-memory counters (no query, nothing written in
the user's transaction). A daemon thread flushes a snapshot every
:data:`~.lib.processes.HEARTBEAT_INTERVAL` seconds through
``async_lab.worker._heartbeat``, in a cursor and transaction of its own.

Threads and ``fork`` do not mix, so the prefork master never runs the thread:
it only remembers its databases, and each child starts its own thread right
after ``fork`` (``os.register_at_fork``). A child that loads the registry later
(no ``db_name`` to preload) starts it on its first request.
"""

import logging
import os
import socket
import sys
import threading
import time

import psutil
import psycopg2.errors
import psycopg2.extensions
from psycopg2.extensions import ISOLATION_LEVEL_READ_COMMITTED

import odoo
from odoo.modules.registry import Registry
from odoo.service import server as odoo_server
from odoo.tools import config

from odoo.addons.queue_job.job import Job

from .lib import processes

_logger = logging.getLogger(__name__)

FIRST_BEAT_DELAY = 1.0


def current_server():
    return getattr(odoo_server, "server", None)


def server_mode():
    """ "prefork" or "threaded" (gevent counts as prefork: it only exists there)."""
    return "prefork" if config["workers"] else "threaded"


def master_pid():
    """PID of the master of this process (itself when it is the master)."""
    if odoo.evented:
        return os.getppid()  # the gevent process is a child of the master
    server = current_server()
    return getattr(server, "pid", None) or os.getpid()


def is_prefork_master():
    server = current_server()
    return isinstance(server, odoo_server.PreforkServer) and server.pid == os.getpid()


def current_role():
    return processes.detect_role(
        os.getpid(),
        [t.name for t in threading.enumerate()],
        evented=odoo.evented,
        workers=config["workers"],
        master_pid=master_pid(),
    )


def sibling_snapshot():
    """role -> PIDs of the master's children as inherited at fork time."""
    server = current_server()
    if not isinstance(server, odoo_server.PreforkServer):
        return {}
    return {
        "http": sorted(getattr(server, "workers_http", {})),
        "cron": sorted(getattr(server, "workers_cron", {})),
        "jobrunner": sorted(getattr(server, "jobrunner", {}) or {}),
    }


class ProcessTracker:
    def __init__(self):
        self._lock = threading.Lock()
        self.dbs = set()
        self.detached = set()  # databases that lost async_lab while this process runs
        self._reset()

    def _reset(self):
        self.pid = os.getpid()
        self.counts = {"requests": 0, "jobs": 0, "crons": 0}
        self.busy = {}  # thread ident -> start time of the request it serves
        self.exit_reason = None
        self.thread = None
        self.stop_event = threading.Event()
        self.cpu_sample = None
        self.failures = 0
        self.role = None

    # -- hooks (hot path: memory only) ------------------------------------
    def count(self, kind, dbname=None):
        with self._lock:
            self.counts[kind] += 1
        if dbname and dbname not in self.detached:
            self.attach(dbname)

    def request_started(self):
        self.busy[threading.get_ident()] = time.time()

    def request_done(self):
        self.busy.pop(threading.get_ident(), None)

    # -- lifecycle -----------------------------------------------------------
    def attach(self, dbname):
        """Track ``dbname`` in this process and make sure the heartbeat runs."""
        if self.pid != os.getpid():  # forked without our after-fork hook
            self._reset()
        self.detached.discard(dbname)  # (re)installed: a registry with async_lab was loaded
        self.dbs.add(dbname)
        if self.thread is None and self.may_run():
            self.start()

    @staticmethod
    def may_run():
        if config["test_enable"] or config["stop_after_init"]:
            return False  # installs and test runs: no background writes
        if current_server() is None:
            return False  # not a server (odoo shell, scripts, pytest-odoo): not on the map
        return not is_prefork_master()

    def start(self):
        self.thread = threading.Thread(target=self._run, name="async_lab heartbeat (%s)" % self.pid, daemon=True)
        self.thread.start()

    def after_fork_in_child(self):
        self._reset()
        if self.dbs and self.may_run():
            self.start()

    def _run(self):
        if self.stop_event.wait(FIRST_BEAT_DELAY):
            return
        while True:
            self.beat()
            if self.stop_event.wait(processes.HEARTBEAT_INTERVAL):
                return

    def beat(self, now=None):
        """One heartbeat. Never raises: the thread must outlive any error
        (a database restart, a bug), or the live process shows stale."""
        try:
            self.flush(now)
        except Exception:
            self._failed(None, unexpected=True)

    def _failed(self, dbname, *, unexpected):
        """Count a failed beat; log the first, the tenth and every hundredth.

        A transient failure (the database restarting, a conflict that its
        retries did not cure) is a WARNING without traceback; anything else
        has its traceback.
        """
        self.failures += 1
        if self.failures in (1, 10) or self.failures % 100 == 0:
            _logger.warning("async_lab heartbeat failed for %s (%d in a row)%s", dbname or "this process",
                            self.failures, "" if unexpected else ": %s" % sys.exc_info()[1],
                            exc_info=unexpected)  # fmt: skip

    def _succeeded(self, dbname):
        if self.failures:
            _logger.info("async_lab heartbeat resumed for %s after %d failed beats", dbname, self.failures)
        self.failures = 0

    # -- flushing --------------------------------------------------------------
    def snapshot(self, now=None):
        """This process's row, as plain values."""
        now = now or time.time()
        own = processes.sample(psutil.Process())
        sample = (now, own["cpu_seconds"])
        cpu_pct = processes.cpu_percent(self.cpu_sample, sample)
        self.cpu_sample = sample
        # A worker's role is known by its work thread, which has ended when
        # the worker writes its last note: the role seen before stays.
        role = self.role = current_role() or self.role
        with self._lock:
            counts = dict(self.counts)
        # One copy, then min: request threads add and remove entries meanwhile
        # (a test of the dict, then min() on it, races with the last request).
        busy = min(dict(self.busy).values(), default=None)
        threads = None
        if role == "threaded":
            threads = [
                {
                    "name": t.name,
                    "type": getattr(t, "type", None),
                    "role": processes.thread_role(t.name, getattr(t, "type", None), type(t).__name__),
                    "ident": t.ident,
                    "daemon": t.daemon,
                }
                for t in threading.enumerate()
            ]
        return {
            "host": socket.gethostname(),
            "pid": self.pid,
            "master_pid": master_pid(),
            "role": role,
            **own,
            "now": now,
            "cpu_percent": cpu_pct,
            "busy_since": busy,
            "exit_reason": self.exit_reason,
            "threads": threads,
            "limits": processes.limits_for(role, config),
            "siblings": sibling_snapshot(),
            **counts,
        }

    @staticmethod
    def tracked_registry(dbname):
        """The registry of ``dbname`` if this process should report there, else None.

        The one place that decides whether a database still tracks processes.
        """
        registry = Registry.registries.get(dbname)
        if registry is None or not registry.ready or "async_lab.worker" not in registry:
            return None
        return registry

    def flush(self, now=None, *, final=False):
        """Write this process's heartbeat in each tracked database.

        Two transactions per database: this process's own row, then the sweep
        of its host (skipped for the last note of an exiting process). Each
        is retried on transient errors (:func:`in_own_transaction`); a
        database that still fails is counted and logged, the others go on.
        """
        if not self.dbs:
            return
        snap = self.snapshot(now)
        if snap["role"] is None:
            return  # no evidence of a role yet (e.g. a worker still starting)
        for dbname in sorted(self.dbs):
            registry = self.tracked_registry(dbname)
            if registry is None:
                continue
            snap_db = dict(snap, db=dbname)
            try:
                if not self._still_installed(registry, dbname):
                    continue
                in_own_transaction(registry, lambda cr, s=snap_db: worker_model(cr)._report(s, final=final),
                                   attempts=FINAL_ATTEMPTS if final else RETRY_ATTEMPTS)  # fmt: skip
                if not final:
                    in_own_transaction(registry, lambda cr, s=snap_db: worker_model(cr)._sweep_host(s))
            except TRANSIENT_ERRORS:
                self._failed(dbname, unexpected=False)
            except Exception:
                self._failed(dbname, unexpected=True)
            else:
                self._succeeded(dbname)

    def _still_installed(self, registry, dbname):
        """Whether async_lab is installed in ``dbname``, as the database says.

        A process keeps its registry until it reloads it: after an uninstall
        on a running server, the cron worker and the job runner still have
        async_lab's models, but its tables are gone. Such a process stops
        tracking the database, with one INFO line; a registry that loads
        async_lab again attaches it again.
        """

        def module_state(cr):
            cr.execute("SELECT state FROM ir_module_module WHERE name = 'async_lab'")
            row = cr.fetchone()
            return row[0] if row else None

        state = in_own_transaction(registry, module_state)
        if state in ("installed", "to upgrade"):
            return True
        if state not in ("to remove", "to install"):  # not being changed: gone for good
            self.dbs.discard(dbname)
            self.detached.add(dbname)
            _logger.info("async_lab is not installed in %s any more: process %s stops tracking it",
                         dbname, self.pid)  # fmt: skip
        return False

    def note_exit(self, reason=None, *, write=True):
        """This process is about to exit on its own: record why (the first
        reason given wins). With ``write``, write the last heartbeat now,
        which marks the row gone: call it only when the exit is certain."""
        self.exit_reason = self.exit_reason or reason
        if not write or self.pid != os.getpid() or not self.may_run():
            return
        self.stop_event.set()
        try:
            self.flush(final=True)
        except Exception:
            self._failed(None, unexpected=True)

    def note_server_stop(self, server, reason):
        """The prefork master stops (or reloads) its whole tree: say so in the
        rows of its processes before it signals them, so that none of them
        reads as killed. Runs in the master, which has no heartbeat thread."""
        host = socket.gethostname()
        self._note_in_each_db(reason, lambda cr: worker_model(cr)._note_server_stop(
            host, server.pid, reason, time.time(), gevent_pid=server.long_polling_pid))  # fmt: skip

    def note_server_stopped(self, server, reason):
        """After the master's stop: its processes that are still on the map
        are gone (the master reaped them or gave up on them)."""
        host = socket.gethostname()
        self._note_in_each_db(reason, lambda cr: worker_model(cr)._note_server_stopped(
            host, server.pid, reason, time.time()))  # fmt: skip

    def _note_in_each_db(self, reason, work):
        for dbname in sorted(self.dbs):
            registry = self.tracked_registry(dbname)
            if registry is None:
                continue
            try:
                in_own_transaction(registry, work, attempts=FINAL_ATTEMPTS)
            except Exception:
                _logger.warning("async_lab could not record the %s of %s", reason, dbname, exc_info=True)


#: PostgreSQL errors that a new attempt can cure: conflicts between concurrent
#: transactions (serialization failure, deadlock detected, lock not available,
#: a unique violation from a concurrent insert) and a lost or refused
#: connection (a database restart). TransactionRollbackError is the family of
#: serialization failures and deadlocks; LockNotAvailable and both are
#: OperationalErrors, listed for the reader.
TRANSIENT_ERRORS = (
    psycopg2.extensions.TransactionRollbackError,
    psycopg2.errors.LockNotAvailable,
    psycopg2.errors.UniqueViolation,
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
)
RETRY_ATTEMPTS = 4
FINAL_ATTEMPTS = 2  # an exiting process does not linger for its last note


def worker_model(cr):
    return odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})["async_lab.worker"]


def in_own_transaction(registry, work, *, attempts=RETRY_ATTEMPTS, sleep=time.sleep):
    """Run ``work(cr)`` in a transaction of its own, committed;
    retry it with backoff on :data:`TRANSIENT_ERRORS`, then re-raise.

    READ COMMITTED, not Odoo's REPEATABLE READ: these statements write rows
    that concurrent heartbeats write too, and each reads what it updates
    under a row lock, so a later snapshot is what they need; at REPEATABLE
    READ a row updated since the transaction's first statement is a
    serialization failure (``could not serialize access``).
    """
    for attempt in range(attempts):
        try:
            with registry.cursor() as cr:
                if isinstance(cr, odoo.sql_db.Cursor):  # not a test's cursor, which shares its transaction
                    cr.connection.set_isolation_level(ISOLATION_LEVEL_READ_COMMITTED)
                return work(cr)
        except TRANSIENT_ERRORS:
            if attempt == attempts - 1:
                raise
            sleep(processes.retry_delay(attempt))


tracker = ProcessTracker()
os.register_at_fork(after_in_child=tracker.after_fork_in_child)


# -- clean exits -----------------------------------------------------------------
# A process that ends through one of Odoo's own paths says why before it goes
# (note_exit); "killed" is left for the processes that vanish without a word.
# Applied by the manifest's post_load, in the prefork master before it forks
# when it preloads its database; a worker that loads the registry later patches
# the classes of its own, still running, Worker instance.
def _patch_worker():
    worker_cls = odoo_server.Worker
    if getattr(worker_cls, "_async_lab_patched", False):
        return
    check_limits = worker_cls.check_limits
    time_expired = worker_cls.signal_time_expired_handler
    stop = worker_cls.stop
    runloop = worker_cls._runloop

    def patched_check_limits(self):
        check_limits(self)
        if not self.alive:  # the worker leaves its loop: Worker.stop writes the note
            memory = odoo_server.memory_info(psutil.Process(os.getpid()))
            tracker.note_exit(processes.exit_reason(
                parent_changed=self.ppid != os.getppid(),
                request_count=self.request_count,
                request_max=self.request_max,
                memory=memory,
                memory_soft=config["limit_memory_soft"],
            ), write=False)  # fmt: skip

    def patched_time_expired(self, n, stack):
        # The exception raised in the main thread exits without Worker.stop.
        tracker.note_exit("time_limit_cpu")
        return time_expired(self, n, stack)

    def patched_runloop(self):
        try:
            return runloop(self)
        except SystemExit:  # Odoo logged "Exception occurred, exiting..." and ends the loop so
            tracker.note_exit("crashed", write=False)
            raise

    def patched_stop(self):
        # Reached when the worker's loop ended: a limit, its master gone, or
        # SIGINT (a recycle, or the master's graceful stop or reload).
        tracker.note_exit("master_gone" if self.ppid != os.getppid() else "stopped")
        return stop(self)

    worker_cls.check_limits = patched_check_limits
    worker_cls.signal_time_expired_handler = patched_time_expired
    worker_cls.stop = patched_stop
    worker_cls._runloop = patched_runloop
    worker_cls._async_lab_patched = True


def _patch_gevent():
    """The websocket process ends itself (SIGTERM) past its memory soft limit
    or when its master is gone: note it first."""
    gevent_cls = odoo_server.GeventServer
    if getattr(gevent_cls, "_async_lab_patched", False):
        return
    process_limits = gevent_cls.process_limits

    def patched_process_limits(self):
        if self.ppid != os.getppid():
            tracker.note_exit("master_gone")
        elif (
            config["limit_memory_soft"]
            and odoo_server.memory_info(psutil.Process(self.pid)) > config["limit_memory_soft"]
        ):
            tracker.note_exit("memory_limit")
        return process_limits(self)

    gevent_cls.process_limits = patched_process_limits
    gevent_cls._async_lab_patched = True


def _patch_master():
    """The master's graceful stop (SIGTERM, SIGINT) and reload (SIGHUP)."""
    prefork_cls = odoo_server.PreforkServer
    if getattr(prefork_cls, "_async_lab_patched", False):
        return
    stop = prefork_cls.stop

    def patched_stop(self, graceful=True):
        noting = self.pid == os.getpid() and not (config["stop_after_init"] or config["test_enable"])
        reason = "server_reload" if getattr(odoo, "phoenix", False) else "server_stop"
        if noting:
            tracker.note_server_stop(self, reason)
        try:
            return stop(self, graceful)
        finally:
            if noting:
                tracker.note_server_stopped(self, reason)

    prefork_cls.stop = patched_stop
    prefork_cls._async_lab_patched = True

    threaded_cls = odoo_server.ThreadedServer
    threaded_stop = threaded_cls.stop

    def patched_threaded_stop(self):
        # A reload re-executes the same process (same PID and start): its row goes on.
        if not getattr(odoo, "phoenix", False):
            tracker.note_exit("server_stop")
        return threaded_stop(self)

    threaded_cls.stop = patched_threaded_stop


def _patch_job_perform():
    """Count the queue jobs this process performs."""
    if getattr(Job, "_async_lab_patched", False):
        return
    perform = Job.perform

    def counted_perform(job):
        tracker.count("jobs")
        return perform(job)

    Job.perform = counted_perform
    Job._async_lab_patched = True


def patch_server():
    """The manifest's post_load: hook the exits and the job counter."""
    _patch_worker()
    _patch_gevent()
    _patch_master()
    _patch_job_perform()
