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

:func:`patch_server`, at the end, is where the server is changed (the
manifest's ``post_load`` calls it); importing this module changes nothing.
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
from odoo.addons.queue_job.jobrunner.runner import _channels

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
        self._server_config = None

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
            _logger.warning(
                "async_lab heartbeat failed for %s (%d in a row)%s",
                dbname or "this process",
                self.failures,
                "" if unexpected else ": %s" % sys.exc_info()[1],
                exc_info=unexpected,
            )

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
            "server_config": self.server_config(),
            "siblings": sibling_snapshot(),
            **counts,
        }

    def server_config(self):
        """The configuration this process sees (read once: it does not change while it runs)."""
        if self._server_config is None:
            options = dict(config.options, server_wide_modules=odoo.conf.server_wide_modules)
            affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
            cores = processes.usable_cpus(affinity, **processes.read_cgroup_cpu())
            self._server_config = processes.server_config(options, _channels(), cores)
        return self._server_config

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
                in_own_transaction(
                    registry,
                    lambda cr, s=snap_db: worker_model(cr)._report(s, final=final),
                    attempts=FINAL_ATTEMPTS if final else RETRY_ATTEMPTS,
                )
                if not final:
                    in_own_transaction(registry, lambda cr, s=snap_db: worker_model(cr)._sweep_host(s))
                if not final and self.acts_for_its_node(snap, registry):
                    carry_out_controls(registry, snap["host"], snap["master_pid"])
            except TRANSIENT_ERRORS:
                self._failed(dbname, unexpected=False)
            except Exception:
                self._failed(dbname, unexpected=True)
            else:
                self._succeeded(dbname)

    @staticmethod
    def acts_for_its_node(snap, registry):
        """Whether this process carries out its node's server controls
        (``async_lab.control``): a forked HTTP or cron worker of a prefork
        master, whose parent is the master it signals."""
        return (
            snap["role"] in ("http", "cron")
            and snap["master_pid"] not in (None, snap["pid"])
            and "async_lab.control" in registry
        )

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
            _logger.info("async_lab is not installed in %s any more: process %s stops tracking it", dbname, self.pid)
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
        self._note_in_each_db(
            reason,
            lambda cr: worker_model(cr)._note_server_stop(
                host, server.pid, reason, time.time(), gevent_pid=server.long_polling_pid
            ),
        )

    def note_server_stopped(self, server, reason):
        """After the master's stop: its processes that are still on the map
        are gone (the master reaped them or gave up on them)."""
        host = socket.gethostname()
        self._note_in_each_db(
            reason, lambda cr: worker_model(cr)._note_server_stopped(host, server.pid, reason, time.time())
        )

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


def control_model(cr):
    return odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})["async_lab.control"]


def carry_out_controls(registry, host, master_pid):
    """This node's pending server controls (``async_lab.control``), in three steps.

    The claim commits the rows as *running* first; each signal is sent in a
    transaction that is never retried (a retry after a failed commit would
    signal again); the outcome is then recorded, retried like any write.
    """
    try:
        master_create_time = psutil.Process(master_pid).create_time()
    except psutil.Error:
        return  # no master to act for
    ids = in_own_transaction(
        registry, lambda cr: control_model(cr)._claim_pending(host, master_pid, master_create_time=master_create_time)
    )
    for control_id in ids:
        try:
            outcome = in_own_transaction(
                registry, lambda cr, i=control_id: control_model(cr).browse(i)._act(), attempts=1
            )
        except Exception as exc:  # one action's failure leaves the others of the beat to run
            _logger.exception("server control %s could not be carried out", control_id)
            outcome = {
                "state": "failed",
                "error": "Failed while carrying it out: %s" % (str(exc).strip() or type(exc).__name__),
            }
        in_own_transaction(registry, lambda cr, i=control_id, o=outcome: control_model(cr).browse(i)._record(o))


tracker = ProcessTracker()


# -- how async_lab changes the server ----------------------------------------------
def patch_server():
    """Apply every change async_lab makes to Odoo's server; nothing else does.

    Called by the manifest's ``post_load`` (``__init__.post_load``), once per
    process that loads the addon: in the prefork master before it forks when
    it preloads its database, else in the worker that loads the registry
    (which then patches the classes of its own running ``Worker``). Importing
    this module changes nothing. Applying twice changes nothing more.

    - ``os.register_at_fork``: a forked child resets the :data:`tracker` and
      starts its own heartbeat thread (:meth:`ProcessTracker.after_fork_in_child`).
    - ``odoo.service.server.Worker`` (HTTP and cron workers) note why they
      exit (:meth:`ProcessTracker.note_exit`): ``check_limits`` (a limit
      reached or the master gone), ``signal_time_expired_handler``
      (``limit_time_cpu``), ``_runloop`` (a crash), ``stop`` (the end of
      the loop, the note is written).
    - ``GeventServer.process_limits``: the websocket process notes its memory
      limit or its master gone before it ends itself.
    - ``PreforkServer.stop``: the master's graceful stop or reload, noted in
      the rows of its tree before it signals them and after they are reaped.
    - ``ThreadedServer.stop``: a threaded server's stop (not a reload).
    - queue_job's ``Job.perform``: counts the jobs this process performs.

    Not patches, but the other hooks of the tracker: requests and crons are
    counted by ordinary model overrides (``models/ir_http.py``,
    ``models/ir_cron.py``), and the process rows are written by
    ``async_lab.worker``.
    """
    global _fork_hook_registered
    if not _fork_hook_registered:
        os.register_at_fork(after_in_child=tracker.after_fork_in_child)
        _fork_hook_registered = True
    _wrap(
        odoo_server.Worker,
        check_limits=_worker_check_limits,
        signal_time_expired_handler=_worker_time_expired,
        _runloop=_worker_runloop,
        stop=_worker_stop,
    )
    _wrap(odoo_server.GeventServer, process_limits=_gevent_process_limits)
    _wrap(odoo_server.PreforkServer, stop=_prefork_stop)
    _wrap(odoo_server.ThreadedServer, stop=_threaded_stop)
    _wrap(Job, perform=_job_perform)


_fork_hook_registered = False


def _wrap(cls, **wrappers):
    """Replace each method ``name`` of ``cls`` by ``wrappers[name](original)``, once."""
    if cls.__dict__.get("_async_lab_patched"):  # own flag: not a patched parent class's
        return
    for name, wrapper in wrappers.items():
        setattr(cls, name, wrapper(getattr(cls, name)))
    cls._async_lab_patched = True


# A process that ends through one of Odoo's own paths says why before it goes
# (note_exit); "killed" is left for the processes that vanish without a word.
def _worker_check_limits(check_limits):
    def patched(self):
        check_limits(self)
        if not self.alive:  # the worker leaves its loop: Worker.stop writes the note
            memory = odoo_server.memory_info(psutil.Process(os.getpid()))
            tracker.note_exit(
                processes.exit_reason(
                    parent_changed=self.ppid != os.getppid(),
                    request_count=self.request_count,
                    request_max=self.request_max,
                    memory=memory,
                    memory_soft=config["limit_memory_soft"],
                ),
                write=False,
            )

    return patched


def _worker_time_expired(time_expired):
    def patched(self, n, stack):
        # The exception raised in the main thread exits without Worker.stop.
        tracker.note_exit("time_limit_cpu")
        return time_expired(self, n, stack)

    return patched


def _worker_runloop(runloop):
    def patched(self):
        try:
            return runloop(self)
        except SystemExit:  # Odoo logged "Exception occurred, exiting..." and ends the loop so
            tracker.note_exit("crashed", write=False)
            raise

    return patched


def _worker_stop(stop):
    def patched(self):
        # Reached when the worker's loop ended: a limit, its master gone, or
        # SIGINT (a recycle, or the master's graceful stop or reload).
        tracker.note_exit("master_gone" if self.ppid != os.getppid() else "stopped")
        return stop(self)

    return patched


def _gevent_process_limits(process_limits):
    """The websocket process ends itself (SIGTERM) past its memory soft limit
    or when its master is gone: note it first."""

    def patched(self):
        if self.ppid != os.getppid():
            tracker.note_exit("master_gone")
        elif (
            config["limit_memory_soft"]
            and odoo_server.memory_info(psutil.Process(self.pid)) > config["limit_memory_soft"]
        ):
            tracker.note_exit("memory_limit")
        return process_limits(self)

    return patched


def _prefork_stop(stop):
    """The master's graceful stop (SIGTERM, SIGINT) and reload (SIGHUP)."""

    def patched(self, graceful=True):
        noting = self.pid == os.getpid() and not (config["stop_after_init"] or config["test_enable"])
        reason = "server_reload" if getattr(odoo, "phoenix", False) else "server_stop"
        if noting:
            tracker.note_server_stop(self, reason)
        try:
            return stop(self, graceful)
        finally:
            if noting:
                tracker.note_server_stopped(self, reason)

    return patched


def _threaded_stop(stop):
    def patched(self):
        # A reload re-executes the same process (same PID and start): its row goes on.
        if not getattr(odoo, "phoenix", False):
            tracker.note_exit("server_stop")
        return stop(self)

    return patched


def _job_perform(perform):
    """Count the queue jobs this process performs."""

    def patched(job):
        tracker.count("jobs")
        return perform(job)

    return patched
