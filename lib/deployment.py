# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Checks of how a server is deployed, from plain values.

Odoo's processes choose their databases in two ways. The HTTP workers serve
the databases that ``dbfilter`` lets through (``odoo.http.db_filter``).
queue_job's job runner and the cron workers read ``db_name`` only
(comma-separated) and ignore ``dbfilter``: without ``db_name`` they work in
every database of the PostgreSQL server, the runner in each one that has
queue_job installed (``jobrunner/runner.py``: ``get_db_names`` and
``Database.has_queue_job``). The runner chooses its databases once, when it
starts, and holds queue_job's advisory lock in each of them.

The callers (the dashboard, a test run) gather the values; the rules are
here, so that any other check (an advisor) can reuse them.
"""

#: Seconds a job runner may take after its start to take its databases
#: (queue_job starts it 5 s after the server).
RUNNER_START_GRACE = 30

#: Why an alive job runner does not dispatch this database's jobs.
RUNNER_CAUSES = ("runner_db_name", "runner_before_install", "runner_not_serving")


def runner_databases(db_name, with_queue_job):
    """The databases queue_job's job runner serves, chosen as it does.

    ``db_name`` is the server option; ``with_queue_job`` the databases known
    to have queue_job installed (a listed database without it is skipped):

    >>> runner_databases("lab", {"lab", "shop"})
    ['lab']
    >>> runner_databases(False, {"shop", "lab"})
    ['lab', 'shop']
    >>> runner_databases("lab,crm", {"lab", "shop"})
    ['lab']
    """
    if db_name:
        return sorted(name for name in db_name.split(",") if name in with_queue_job)
    return sorted(with_queue_job)


def runner_outside_dbfilter(runner_dbs, served):
    """The runner's databases that this server's HTTP side does not serve.

    The runner still requeues their stuck jobs and asks this server to run
    them, which it refuses. ``served`` is what ``odoo.http.db_filter`` lets
    through:

    >>> runner_outside_dbfilter(["lab", "shop"], ["lab"])
    ['shop']
    >>> runner_outside_dbfilter(["lab"], ["lab"])
    []
    """
    served = set(served)
    return [db for db in runner_dbs if db not in served]


def runner_cause(db, *, db_name, lock_held, runner_started, queue_job_installed, now):
    """Why the job runner, alive, does not serve ``db``: one of RUNNER_CAUSES, or None.

    ``lock_held``: a runner holds queue_job's advisory lock in ``db`` (it
    serves it). ``runner_started`` and ``queue_job_installed`` (when queue_job
    was last installed or updated in ``db``) and ``now`` are epoch seconds.

    >>> ok = dict(db_name=False, lock_held=True, runner_started=100, queue_job_installed=50, now=1000)
    >>> runner_cause("lab", **ok) is None
    True
    >>> runner_cause("lab", **dict(ok, lock_held=False, db_name="shop"))
    'runner_db_name'
    >>> runner_cause("lab", **dict(ok, lock_held=False, queue_job_installed=400))
    'runner_before_install'
    >>> runner_cause("lab", **dict(ok, lock_held=False))
    'runner_not_serving'

    A runner that has just started is given time to take its databases:

    >>> runner_cause("lab", **dict(ok, lock_held=False, runner_started=990)) is None
    True
    """
    if lock_held or runner_started is None:
        return None
    if db_name and db not in db_name.split(","):
        return "runner_db_name"
    if queue_job_installed is not None and runner_started < queue_job_installed:
        return "runner_before_install"
    if now - runner_started > RUNNER_START_GRACE:
        return "runner_not_serving"
    return None


def test_run_problem(test_db, served, http_listening):
    """Why an Odoo test run must not start, or None.

    Test requests that carry no database go to the database ``dbfilter``
    (or ``db_name``) selects (``served``), on this run's own HTTP port: both
    must be the test database's alone.

    >>> test_run_problem("lab_test", ["lab_test"], True) is None
    True
    >>> test_run_problem("lab_test", ["lab", "lab_test"], True)
    'dbfilter'
    >>> test_run_problem("lab_test", ["lab_test"], False)
    'http_port'
    """
    if list(served) != [test_db]:
        return "dbfilter"
    if not http_listening:
        return "http_port"
    return None
