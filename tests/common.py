# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Shared fixtures of the addon's Odoo tests."""

import doctest
import logging
import os
import socket
import subprocess
import threading
import time
import traceback
import uuid as uuidlib
from datetime import timedelta
from unittest.mock import patch

import psutil

from odoo import SUPERUSER_ID, api, fields
from odoo.http import db_filter
from odoo.service import server as odoo_server
from odoo.service.db import list_dbs
from odoo.tests import TransactionCase
from odoo.tests.common import HOST, get_db_name
from odoo.tools import SQL, config

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import Job

from ..lib import deployment

_logger = logging.getLogger(__name__)


class AsyncLabCase(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Burst = cls.env["async_lab.burst"]
        cls.manager = cls.env["res.users"].create(
            {
                "name": "Lab manager",
                "login": "async_lab_manager",
                "groups_id": [(6, 0, [cls.env.ref("async_lab.async_lab_group_manager").id])],
            }
        )
        cls.user = cls.env["res.users"].create(
            {
                "name": "Lab user",
                "login": "async_lab_user",
                "groups_id": [(6, 0, [cls.env.ref("async_lab.async_lab_group_user").id])],
            }
        )

    def perform_like_runner(self, job_uuid):
        """One run of a stored job, as queue_job's /queue_job/runjob does it.

        (Without its commits: the test's transaction is rolled back.)
        """
        job = Job.load(self.env, job_uuid)
        job.set_started()
        job.store()
        try:
            with self.env.cr.savepoint():
                job.perform()
        except RetryableJobError as err:
            job.postpone(result=str(err), seconds=err.seconds)
            job.set_pending(reset_retry=False)
        except Exception as err:  # what the runner does with any other error
            job.set_failed(exc_name=type(err).__name__, exc_message=str(err), exc_info=traceback.format_exc())
        else:
            job.set_done()
        job.store()
        if job.state == "done":
            self.env.flush_all()
            job.enqueue_waiting()  # release the jobs that depended on it
        record = self.env["queue.job"].search([("uuid", "=", job_uuid)])
        record.invalidate_recordset()
        return record

    def insert_job(self, channel, state="done", created=None, enqueued=None, started=None, done=None, **extra):
        """A hand-built queue_job row (SQL), for exact statistics."""
        cols = {
            "uuid": str(uuidlib.uuid4()),
            "state": state,
            "channel": channel,
            "priority": 10,
            "model_name": "async_lab.burst",
            "method_name": "_job_task",
            "name": "test job",
            "date_created": created,
            "date_enqueued": enqueued,
            "date_started": started,
            "date_done": done,
            "retry": 0,
            "max_retries": 5,
            "user_id": self.env.uid,
            "company_id": self.env.company.id,
            **extra,
        }
        self.env.cr.execute(
            SQL(
                "INSERT INTO queue_job (%s) VALUES %s RETURNING id",
                SQL(", ").join(SQL.identifier(col) for col in cols),
                tuple(cols.values()),
            )
        )
        return self.env.cr.fetchone()[0]


def assert_doctests(case, module, more_than=0):
    """Run ``module``'s doctests in ``case``: more than ``more_than`` examples, none failing.

    The minimum is the guard against a module whose examples silently stopped
    being collected (a renamed ``__test__``, a docstring turned into a comment).
    """
    result = doctest.testmod(module)
    case.assertGreater(result.attempted, more_than)
    case.assertEqual(result.failed, 0)


def heartbeat_snapshot(env, **kw):
    """A process snapshot for ``async_lab.worker._heartbeat``: an HTTP worker on another host, and ``kw``."""
    vals = {
        "host": "elsewhere",
        "pid": 4242,
        "master_pid": 4000,
        "role": "http",
        "create_time": 1000.0,
        "now": time.time(),
        "rss_mb": 100.0,
        "cpu_seconds": 1.0,
        "cpu_percent": 5.0,
        "requests": 3,
        "jobs": 1,
        "crons": 0,
        "busy_since": None,
        "exit_reason": None,
        "threads": None,
        "siblings": {},
        "db": env.cr.dbname,
        "limits": {
            "limit_time_real": 120,
            "limit_time_cpu": 60,
            "limit_request": 65536,
            "limit_memory_soft_mb": 2048,
            "limit_memory_hard_mb": 2560,
        },
    }
    vals.update(kw)
    return vals


def at(base, seconds):
    return base + timedelta(seconds=seconds)


def now_minute():
    return fields.Datetime.now().replace(second=0, microsecond=0)


class BurstJobRunner:
    """A stand-in for queue_job's runner while a tour runs (a context manager).

    A test run has no job runner, and its jobs live in the test's uncommitted
    transaction. In test mode ``registry.cursor()`` is a TestCursor on that
    transaction, serialised with the test HTTP server's requests: this thread
    sees the jobs the browser creates, and the browser sees them done. It
    runs the pending jobs of bursts as the runner and ``/queue_job/runjob``
    do: enqueue, then start, perform and store, one cursor per step.
    """

    #: It only reads ``self.env``, which each step sets.
    perform_like_runner = AsyncLabCase.perform_like_runner

    def __init__(self, registry, interval=0.2):
        self.registry = registry
        self.interval = interval
        self.env = None
        self.performed = []
        self.errors = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="async_lab test job runner", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(timeout=30)
        if self._thread.is_alive():
            self.errors.append("the job runner thread did not stop within 30 s")

    def run_tour(self, case, url, tour_name, timeout):
        """``case.start_tour(...)`` as admin, with this runner running from its login to its end."""
        authenticate = case.authenticate

        def authenticate_then_run(*args, **kwargs):
            # start_tour logs in with the test's own cursor, outside the lock
            # that serialises the test cursors: only then may the runner
            # thread start using the shared transaction.
            result = authenticate(*args, **kwargs)
            self.__enter__()
            return result

        try:
            with patch.object(case, "authenticate", authenticate_then_run):
                case.start_tour(url, tour_name, login="admin", timeout=timeout)
        finally:
            if self._thread.ident is not None:  # started
                self.__exit__(None, None, None)

    def _loop(self):
        while not self._stop.wait(self.interval):
            try:
                for job_uuid in self._step(self._pending):
                    self._step(self._enqueue, job_uuid)
                    self._step(self.perform_like_runner, job_uuid)
                    self.performed.append(job_uuid)
            except Exception:
                self.errors.append(traceback.format_exc())
                _logger.exception("async_lab test job runner")
                return  # the test reports it

    def _step(self, func, *args):
        with self.registry.cursor() as cr:
            self.env = api.Environment(cr, SUPERUSER_ID, {})
            try:
                return func(*args)
            finally:
                self.env = None

    def _pending(self):
        self.env.cr.execute(
            "SELECT uuid FROM queue_job WHERE state = 'pending' AND async_lab_burst_id IS NOT NULL "
            "ORDER BY priority, date_created, id"
        )
        return [row[0] for row in self.env.cr.fetchall()]

    def _enqueue(self, job_uuid):
        job = Job.load(self.env, job_uuid)
        job.set_enqueued()
        job.store()


# -- where the test run's requests go ------------------------------------------
#: The command that runs these tests beside a running server (README, Installation).
TEST_COMMAND = (
    "odoo -c <your odoo.conf> -d async_lab_test -i async_lab --test-enable --test-tags /async_lab"
    " --db-filter='^async_lab_test$' --http-port=<a free port> --workers=0 --max-cron-threads=0"
    " --without-demo=all --stop-after-init"
)


class UnsafeTestRun(Exception):
    """This test run would send its requests to another database than its own."""


def refuse_unsafe_test_run():
    """Raise UnsafeTestRun, with the command to use, when the test run would serve another database.

    HttpCase requests and tours that name no database go to the one that
    dbfilter (or db_name) selects, on this run's own HTTP port: with the
    config of a running server, that is the server's database (issue #18).
    Odoo's test loader imports the tests package in the test run only (pytest-odoo
    sets ``test_enable`` after its imports): the exception stops that run.
    """
    if not config["test_enable"]:
        return
    test_db = get_db_name()
    served = db_filter(list_dbs(True), host=HOST)
    server = odoo_server.server
    listening = not (isinstance(server, odoo_server.ThreadedServer) and server.httpd is None)
    problem = deployment.test_run_problem(test_db, served, listening)
    if problem == "dbfilter":
        raise UnsafeTestRun(
            "async_lab's tests refuse to run: their requests that name no database would go to %s "
            "(dbfilter %r, db_name %r), not to the test database %s alone. Run them in a fresh database "
            "of their own:\n    %s"
            % (", ".join(served) or "no database", config["dbfilter"], config["db_name"], test_db, TEST_COMMAND)
        )
    if problem == "http_port":
        raise UnsafeTestRun(
            "async_lab's tests refuse to run: this run's HTTP server is not listening on port %s (another "
            "server uses it?), so its requests would go to that server. Give it a free port:\n    %s"
            % (config["http_port"], TEST_COMMAND)
        )


#: The configuration a fake node's HTTP worker reports (register_node).
NODE_CONF = {
    "workers": 2,
    "max_cron_threads": 1,
    "server_wide_modules": ["base", "web", "queue_job"],
    "channels": "root:1",
}


def register_node(cleanup, env, *, workers=2):
    """This test process as a node's master, and a child of its own (``sleep``, not an Odoo worker)
    as its HTTP worker, in the process registry; every other process row is gone. Return the child.

    ``cleanup`` (``addCleanup`` or ``addClassCleanup``) kills the child at the end.
    """
    child = subprocess.Popen(["sleep", "300"])
    cleanup(child.wait)
    cleanup(child.kill)
    env.cr.execute("UPDATE async_lab_worker SET state = 'gone' WHERE state != 'gone'")
    Worker = env["async_lab.worker"]
    host, master, now = socket.gethostname(), os.getpid(), time.time()
    Worker._upsert(
        {
            "host": host,
            "pid": master,
            "master_pid": master,
            "role": "master",
            "now": now,
            "create_time": psutil.Process(master).create_time(),
        },
        self_reported=False,
    )
    Worker._upsert(
        {
            "host": host,
            "pid": child.pid,
            "master_pid": master,
            "role": "http",
            "now": now,
            "create_time": psutil.Process(child.pid).create_time(),
            "server_config": dict(NODE_CONF, workers=workers),
        },
        self_reported=True,
    )
    return child
