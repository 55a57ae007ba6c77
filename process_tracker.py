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
import threading
import time

import psutil
import psycopg2.errors

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
            self.flush()
            if self.stop_event.wait(processes.HEARTBEAT_INTERVAL):
                return

    # -- flushing --------------------------------------------------------------
    def snapshot(self, now=None):
        """This process's row, as plain values."""
        now = now or time.time()
        proc = psutil.Process()
        with proc.oneshot():
            cpu = proc.cpu_times()
            cpu_seconds = cpu.user + cpu.system
            rss = proc.memory_info().rss
            create_time = proc.create_time()
        sample = (now, cpu_seconds)
        cpu_pct = processes.cpu_percent(self.cpu_sample, sample)
        self.cpu_sample = sample
        role = current_role()
        with self._lock:
            counts = dict(self.counts)
        busy = min(self.busy.values()) if self.busy else None
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
            "create_time": create_time,
            "now": now,
            "rss_mb": round(rss / 1048576, 1),
            "cpu_seconds": round(cpu_seconds, 2),
            "cpu_percent": cpu_pct,
            "busy_since": busy,
            "exit_reason": self.exit_reason,
            "threads": threads,
            "limits": processes.limits_for(role, config),
            "siblings": sibling_snapshot(),
            **counts,
        }

    def flush(self, now=None):
        """Write this process's heartbeat in each tracked database."""
        if not self.dbs:
            return
        snap = self.snapshot(now)
        if snap["role"] is None:
            return  # no evidence of a role yet (e.g. a worker still starting)
        for dbname in sorted(self.dbs):
            registry = Registry.registries.get(dbname)
            if registry is None or not registry.ready or "async_lab.worker" not in registry:
                continue
            try:
                if not self._still_installed(registry, dbname):
                    continue
                self._write(registry, dict(snap, db=dbname))
                self.failures = 0
            except Exception:
                self.failures += 1
                if self.failures in (1, 10) or self.failures % 100 == 0:
                    _logger.warning("async_lab heartbeat failed for %s (%d in a row)", dbname,
                                    self.failures, exc_info=True)  # fmt: skip

    def _still_installed(self, registry, dbname):
        """Whether async_lab is installed in ``dbname``, as the database says.

        A process keeps its registry until it reloads it: after an uninstall
        on a running server, the cron worker and the job runner still have
        async_lab's models, but its tables are gone. Such a process stops
        tracking the database, with one INFO line; a registry that loads
        async_lab again attaches it again.
        """
        with registry.cursor() as cr:
            cr.execute("SELECT state FROM ir_module_module WHERE name = 'async_lab'")
            row = cr.fetchone()
        state = row[0] if row else None
        if state in ("installed", "to upgrade"):
            return True
        if state not in ("to remove", "to install"):  # not being changed: gone for good
            self.dbs.discard(dbname)
            self.detached.add(dbname)
            _logger.info("async_lab is not installed in %s any more: process %s stops tracking it",
                         dbname, self.pid)  # fmt: skip
        return False

    @staticmethod
    def _write(registry, snap, attempts=3):
        """One heartbeat transaction; concurrent sweeps of sibling processes
        can make it a serialization failure: then it is simply retried."""
        for attempt in range(attempts):
            try:
                with registry.cursor() as cr:
                    env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
                    env["async_lab.worker"]._heartbeat(snap)
                return
            except psycopg2.errors.SerializationFailure:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def note_exit(self, reason):
        """A worker is about to exit on its own: record why, right away."""
        if self.exit_reason:
            return
        self.exit_reason = reason
        self.stop_event.set()
        self.flush()


tracker = ProcessTracker()
os.register_at_fork(after_in_child=tracker.after_fork_in_child)


# -- exits of prefork workers -------------------------------------------------
# Patched at import, so the prefork master patches before it forks (when it
# preloads its database) and a worker that loads the registry later patches
# its own, still running, Worker instance.
def _patch_worker():
    worker_cls = odoo_server.Worker
    if getattr(worker_cls, "_async_lab_patched", False):
        return
    check_limits = worker_cls.check_limits
    time_expired = worker_cls.signal_time_expired_handler

    def patched_check_limits(self):
        check_limits(self)
        if not self.alive:
            memory = odoo_server.memory_info(psutil.Process(os.getpid()))
            tracker.note_exit(processes.exit_reason(
                parent_changed=self.ppid != os.getppid(),
                request_count=self.request_count,
                request_max=self.request_max,
                memory=memory,
                memory_soft=config["limit_memory_soft"],
            ))  # fmt: skip

    def patched_time_expired(self, n, stack):
        tracker.note_exit("time_limit_cpu")
        return time_expired(self, n, stack)

    worker_cls.check_limits = patched_check_limits
    worker_cls.signal_time_expired_handler = patched_time_expired
    worker_cls._async_lab_patched = True


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


_patch_worker()
_patch_job_perform()
