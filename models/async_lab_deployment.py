# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import time

import psutil
import psycopg2

from odoo import _, api, models
from odoo.http import db_filter, request
from odoo.service import db as service_db
from odoo.service import server as odoo_server
from odoo.tools import config

from odoo.addons.queue_job import jobrunner as queue_job_jobrunner
from odoo.addons.queue_job.jobrunner import _is_runner_enabled
from odoo.addons.queue_job.jobrunner.runner import PG_ADVISORY_LOCK_ID, _connection_info_for

from ..lib import deployment
from ..lib.times import to_epoch
from ..process_tracker import current_server, master_pid
from .async_lab_worker import process_start

#: Seconds the job runner's databases outside dbfilter are remembered: finding
#: them connects to each database that dbfilter excludes.
RUNNER_DBS_TTL = 60
_runner_dbs_cache = {}


def own_runner_started():
    """When this server's job runner started (epoch seconds), or None if it runs none.

    A prefork server whose master queue_job patched spawns a runner process
    (its start is the master's, give or take seconds); a threaded server runs
    it as a thread, unless it only installs or tests (``stop_after_init``).
    """
    server = current_server()
    if isinstance(server, odoo_server.PreforkServer):
        if not hasattr(server, "jobrunner") or not _is_runner_enabled():
            return None
    elif queue_job_jobrunner.runner_thread is None:
        return None
    try:
        return process_start(psutil.Process(master_pid()).create_time(), time.time())
    except psutil.Error:
        return None


def has_queue_job(db_name):
    """Whether queue_job is installed in ``db_name``, checked as its job runner does."""
    try:
        conn = psycopg2.connect(connect_timeout=5, **_connection_info_for(db_name))
    except psycopg2.Error:
        return False
    try:
        with conn.cursor() as cr:
            cr.execute("SELECT to_regclass('ir_module_module') IS NOT NULL")
            if not cr.fetchone()[0]:
                return False
            cr.execute("SELECT 1 FROM ir_module_module WHERE name = 'queue_job' AND state = 'installed'")
            return bool(cr.fetchone())
    finally:
        conn.close()


class AsyncLabDeployment(models.AbstractModel):
    """What is wrong with how this server is deployed, as dashboard banners.

    The rules are in ``lib/deployment.py``; this model gathers their inputs.
    """

    _name = "async_lab.deployment"
    _description = "Async Lab deployment checks"

    @api.model
    def _banners(self, runner):
        """``[{"code", "message"}]`` for the dashboard; ``runner`` is get_stats' ``runner``."""
        banners = []
        host = request.httprequest.environ.get("HTTP_HOST", "") if request else ""
        outside = self._runner_outside_dbfilter(host)
        if outside:
            # Other databases' names are for administrators only.
            names = ", ".join(outside) if self.env.user.has_group("base.group_system") else None
            banners.append(
                {
                    "code": "runner_outside_dbfilter",
                    "message": _(
                        "The job runner of this server also serves %(dbs)s, which dbfilter (%(dbfilter)s) excludes: "
                        "it requeues their jobs and asks this server to run them. The job runner and the cron "
                        "workers read db_name and ignore dbfilter: set db_name = %(db)s in the configuration and "
                        "restart Odoo.",
                        dbs=names or _("%(count)s other database(s)", count=len(outside)),
                        dbfilter=config["dbfilter"],
                        db=self.env.cr.dbname,
                    ),
                }
            )
        cause = self._runner_cause(runner)
        if cause:
            messages = {
                "runner_db_name": _(
                    "The job runner does not serve this database: it reads only db_name (%(db_name)s), which "
                    "does not list %(db)s. Jobs stay pending: add %(db)s to db_name and restart Odoo.",
                    db_name=config["db_name"],
                    db=self.env.cr.dbname,
                ),
                "runner_before_install": _(
                    "The job runner started before queue_job was installed in this database, and it looks "
                    "for databases only when it starts: jobs stay pending until Odoo is restarted."
                ),
                "runner_not_serving": _(
                    "The job runner runs but does not serve this database: jobs stay pending. Restart Odoo, "
                    'and look in its log for "queue job runner ready for db %(db)s".',
                    db=self.env.cr.dbname,
                ),
            }
            # "runner": it explains why jobs stay pending, instead of the "no job runner seen" banner.
            banners.append({"code": cause, "message": messages[cause], "runner": True})
        return banners

    @api.model
    def _runner_outside_dbfilter(self, host):
        """The databases this server's job runner serves and its dbfilter excludes (cached)."""
        if "queue_job" not in config["server_wide_modules"] or not _is_runner_enabled():
            return []  # no job runner in this server
        key = (config["db_name"], config["dbfilter"], host)
        expires, outside = _runner_dbs_cache.get(key, (0, None))
        if time.monotonic() < expires:
            return outside
        candidates = config["db_name"].split(",") if config["db_name"] else service_db.list_dbs(True)
        served = db_filter(candidates, host=host)
        # Only the databases that dbfilter excludes matter: only those are checked.
        excluded = deployment.runner_outside_dbfilter(candidates, served)
        with_queue_job = {name for name in excluded if has_queue_job(name)}
        outside = deployment.runner_outside_dbfilter(
            deployment.runner_databases(config["db_name"], with_queue_job), served
        )
        _runner_dbs_cache[key] = (time.monotonic() + RUNNER_DBS_TTL, outside)
        return outside

    @api.model
    def _runner_cause(self, runner):
        """Why the job runner does not serve this database, or None (lib/deployment.py).

        The runner is the one the registry saw alive, or this server's own: a
        runner whose database had no async_lab when it started never reports
        itself, and its siblings may not know its PID.
        """
        own_started = own_runner_started()
        if not runner.get("alive") and own_started is None:
            return None  # no runner at all: the dashboard's "no job runner seen" banner
        self.env.cr.execute(
            """SELECT (SELECT max(started_at) FROM async_lab_worker WHERE state = 'alive' AND pid = ANY(%s)),
                      (SELECT write_date FROM ir_module_module WHERE name = 'queue_job' AND state = 'installed')""",
            [runner.get("pids") or []],
        )
        runner_started, installed = self.env.cr.fetchone()
        return deployment.runner_cause(
            self.env.cr.dbname,
            db_name=config["db_name"],
            lock_held=self._runner_lock_held(),
            runner_started=to_epoch(runner_started) if runner_started else own_started,
            queue_job_installed=to_epoch(installed),
            now=time.time(),
        )

    @api.model
    def _runner_lock_held(self):
        """Whether a job runner serves this database: it holds queue_job's advisory lock in it."""
        self.env.cr.execute(
            """SELECT EXISTS(SELECT 1 FROM pg_locks
                              WHERE locktype = 'advisory' AND granted AND objsubid = 1
                                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                                AND classid::bigint = %s AND objid::bigint = %s)""",
            [PG_ADVISORY_LOCK_ID >> 32, PG_ADVISORY_LOCK_ID & 0xFFFFFFFF],
        )
        return self.env.cr.fetchone()[0]
