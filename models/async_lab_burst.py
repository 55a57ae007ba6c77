# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging
import time
from datetime import datetime, timedelta

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL, config

from odoo.addons.queue_job.delay import chain, group
from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import DEFAULT_PRIORITY, Job

from ..lib import catalogue, workloads
from ..lib.groups import GROUP_MANAGER
from ..lib.times import to_datetime
from .async_lab_workload_mixin import bounded
from .queue_job import ACTIVE_STATES, CANCELLABLE_STATES, FAILED, JOB_STATES

_logger = logging.getLogger(__name__)

#: Most jobs one burst may create.
MAX_JOBS = 1000
MAX_PRIORITY = 9999
#: Lab jobs never outrank business jobs: their priority is never below
#: queue_job's default (lower runs first), which business jobs get unless
#: they ask otherwise.
MIN_PRIORITY = DEFAULT_PRIORITY
#: PostgreSQL advisory locks of the lab, (LOCK_SPACE, key), all held until
#: the end of the transaction that takes them (a killed process lets them
#: go with its connection): LOCK_LAB_JOBS serialises the checks of
#: async_lab.max_active_jobs with the launches they allow; LOCK_RUN is held
#: by the one lab run of the database; keys from LOCK_DB_SLOTS on are the
#: slots of io_db's connections, one per connection.
LOCK_SPACE = 0x616C6162  # "alab"
LOCK_LAB_JOBS = 1
LOCK_RUN = 2
LOCK_DB_SLOTS = 1000
MAX_RETRIES = 20
#: Seconds between two job-completion notifications from the whole server:
#: dashboards refresh at most once a second anyway (MIN_REFRESH_GAP in
#: static/src/dashboard/live_updates.js).
JOB_NOTIFY_INTERVAL = 1.0
_next_job_notify = {}  # dbname -> time.monotonic() from which to notify again

SHAPES = [
    ("independent", "Independent: N jobs"),
    ("chain", "Chain: N jobs one after another"),
    ("fanout", "Fan-out/fan-in: group of N jobs, then a reduce job"),
]
#: The position of the launch number in the arguments of each job method.
LAUNCH_ARG = {"_job_task": 1, "_job_reduce": 0}


class BurstRunning(UserError):
    """The burst still has jobs to run: launching it again is refused (HTTP 409)."""


class TooManyLabJobs(UserError):
    """Lab jobs in flight would pass async_lab.max_active_jobs (HTTP 429)."""


class LabBusy(BurstRunning):
    """Another lab run, or io_db's connections, are busy on this database (HTTP 409)."""


class AsyncLabBurst(models.Model):
    """N queue jobs of one workload, launched together and watched together."""

    _name = "async_lab.burst"
    _inherit = ["async_lab.workload.mixin"]
    _description = "Job burst"
    _order = "id desc"

    name = fields.Char(compute="_compute_name", store=True)
    job_count = fields.Integer("Jobs", default=10, required=True, help="At most %d." % MAX_JOBS)
    channel = fields.Selection(catalogue.CHANNELS, required=True, default=catalogue.CHANNEL_IO)
    priority = fields.Integer(
        default=MIN_PRIORITY,
        group_operator=False,
        help=(
            "queue_job priority: lower runs first (%d to %d). A lower value counts as %d: lab jobs never "
            "outrank business jobs, which have %d unless they ask otherwise."
            % (MIN_PRIORITY, MAX_PRIORITY, MIN_PRIORITY, DEFAULT_PRIORITY)
        ),
    )
    eta = fields.Datetime("Not before", help="Jobs wait until this time.")
    max_retries = fields.Integer(
        default=5, group_operator=False, help="Retries of a job before it fails (0 to %d)." % MAX_RETRIES
    )
    shape = fields.Selection(SHAPES, required=True, default="independent")
    launch_count = fields.Integer(readonly=True, copy=False)
    launched_at = fields.Datetime(readonly=True, copy=False)
    job_ids = fields.One2many("queue.job", "async_lab_burst_id", readonly=True)

    state = fields.Selection(
        [
            ("draft", "Not launched"),
            ("running", "Running"),
            ("done", "Done"),
            ("failed", "Failed"),
            ("cancelled", "Cancelled"),
        ],
        compute="_compute_progress",
    )
    jobs_wait_dependencies = fields.Integer("Waiting for dependencies", compute="_compute_progress")
    jobs_pending = fields.Integer("Pending", compute="_compute_progress")
    jobs_enqueued = fields.Integer("Enqueued", compute="_compute_progress")
    jobs_started = fields.Integer("Started", compute="_compute_progress")
    jobs_done = fields.Integer("Done", compute="_compute_progress")
    jobs_failed = fields.Integer("Failed", compute="_compute_progress")
    jobs_cancelled = fields.Integer("Cancelled", compute="_compute_progress")
    jobs_total = fields.Integer("Jobs of the last launch", compute="_compute_progress")
    makespan = fields.Float(
        "Makespan (s)",
        compute="_compute_progress",
        digits=(16, 3),
        help="First job created to last job done, last launch.",
    )
    jobs_per_second = fields.Float("Jobs/s", compute="_compute_progress", digits=(16, 2))
    pid_distribution = fields.Json("Jobs per worker PID", compute="_compute_progress")
    pid_summary = fields.Char("Worker PIDs", compute="_compute_progress")
    failed_job_ids = fields.Many2many("queue.job", compute="_compute_progress", string="Failed jobs")

    _sql_constraints = [
        (
            "job_count_range",
            "CHECK(job_count BETWEEN 1 AND %d)" % MAX_JOBS,
            "A burst has between 1 and %d jobs." % MAX_JOBS,
        ),
        (
            "priority_range",
            "CHECK(priority BETWEEN 0 AND %d)" % MAX_PRIORITY,
            "Priority is between 0 and %d." % MAX_PRIORITY,
        ),
        (
            "max_retries_range",
            "CHECK(max_retries BETWEEN 0 AND %d)" % MAX_RETRIES,
            "Max retries is between 0 and %d." % MAX_RETRIES,
        ),
    ]

    @api.depends("workload", "job_count", "shape")
    def _compute_name(self):
        for rec in self:
            rec.name = "%s × %s (%s)" % (rec.workload, rec.job_count, rec.shape)

    @api.onchange("workload")
    def _onchange_workload(self):
        if self.workload in workloads.WORKLOADS:
            self.channel = catalogue.default_channel(self.workload)

    # ------------------------------------------------------------------
    # Launching
    # ------------------------------------------------------------------
    def _identity_key(self, index):
        return "async_lab.burst:%d:%d" % (self.id, index)

    def _active_job_count(self):
        """Jobs of this burst still to run, found by their identity keys."""
        self.env["queue.job"].flush_model(["identity_key", "state"])
        keys = [self._identity_key(i) for i in range(self.job_count)] + [self._identity_key(-1)]
        self.env.cr.execute(
            "SELECT count(*) FROM queue_job WHERE identity_key = ANY(%s) AND state IN %s",
            [keys, ACTIVE_STATES],
        )
        return self.env.cr.fetchone()[0]

    def action_launch(self):
        """Enqueue the burst's jobs (Managers only); refused while it runs."""
        for burst in self:
            burst._launch()
        return True

    def _launch(self):
        """Enqueue the burst's jobs (Managers only); return their UUIDs, in index order."""
        self.ensure_one()
        if not self.env.user.has_group(GROUP_MANAGER):
            raise AccessError(_("Only Async Lab managers may launch bursts: they create load."))
        # Serialise concurrent launches of one burst, then look for its jobs.
        self.env.cr.execute("SELECT id FROM async_lab_burst WHERE id = %s FOR UPDATE", [self.id])
        running = self._active_job_count()
        if running:
            raise BurstRunning(
                _(
                    "Burst %(name)s is still running (%(count)s jobs to go): wait for it, or cancel its jobs.",
                    name=self.name,
                    count=running,
                )
            )
        return self._enqueue()

    @api.model
    def _check_lab_job_cap(self, new_jobs):
        """Refuse ``new_jobs`` more lab jobs above async_lab.max_active_jobs.

        Lab jobs are those tagged with a burst or an experiment. Concurrent
        launches take turns here (a lock until their commit), so that two of
        them cannot both pass the cap.
        """
        cap = self.env["ir.config_parameter"]._async_lab_int("async_lab.max_active_jobs")
        self.env["queue.job"].flush_model(["state", "async_lab_burst_id", "async_lab_experiment_id"])
        self.env.cr.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_SPACE, LOCK_LAB_JOBS])
        self.env.cr.execute(
            """SELECT count(*) FROM queue_job WHERE state IN %s
                  AND (async_lab_burst_id IS NOT NULL OR async_lab_experiment_id IS NOT NULL)""",
            [ACTIVE_STATES],
        )
        active = self.env.cr.fetchone()[0]
        if active + new_jobs > cap:
            raise TooManyLabJobs(
                _(
                    "Too many lab jobs in flight: %(active)s are waiting or running, %(new)s more would pass the "
                    "limit of %(cap)s (setting async_lab.max_active_jobs). Wait for them to finish, or cancel some.",
                    active=active,
                    new=new_jobs,
                    cap=cap,
                )
            )

    @api.model
    def _max_db_connections(self):
        """io_db's connections at once, server-wide: async_lab.max_db_connections,
        by default a quarter of db_maxconn (Odoo's pool size per process)."""
        default = max(1, (config["db_maxconn"] or 64) // 4)
        return self.env["ir.config_parameter"]._async_lab_int("async_lab.max_db_connections", default=default)

    @api.model
    def _take_db_slots(self, wanted):
        """Take up to ``wanted`` of io_db's connection slots; return how many.

        A slot is an advisory lock of this transaction: every process of the
        server (prefork workers included) takes them from the same range, so
        that the lab never holds more than :meth:`_max_db_connections`
        connections of its own at once. They are let go at commit, rollback,
        or when the connection dies with its process.
        """
        first = LOCK_DB_SLOTS
        self.env.cr.execute(
            """SELECT count(*) FROM (SELECT slot FROM generate_series(%s, %s) AS slot
                                      WHERE pg_try_advisory_xact_lock(%s, slot) LIMIT %s) AS taken""",
            [first, first + self._max_db_connections() - 1, LOCK_SPACE, wanted],
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _wait_for_db_slot(self, workload):
        """In a job of ``workload``: take a connection slot if it connects
        to PostgreSQL, else postpone the job (its retries are not counted)."""
        if "dsn" in workloads.WORKLOADS[workload].settings and not self._take_db_slots(1):
            raise RetryableJobError(
                "the %d connections of io_db are all in use (async_lab.max_db_connections)"
                % self._max_db_connections(),
                seconds=1,
                ignore_retry=True,
            )

    def _enqueue(self):
        self.ensure_one()
        params = self._clean_params(self.workload, self._user_params())
        self._check_lab_job_cap(self.job_count + (self.shape == "fanout"))
        launch = self.launch_count + 1
        options = {
            "priority": max(self.priority, MIN_PRIORITY),
            "eta": self.eta,
            "max_retries": self.max_retries,
            "channel": self.channel,
        }
        delayables = [
            self.delayable(
                identity_key=self._identity_key(index),
                description="Async Lab %s #%d/%d (%s)" % (self.workload, index + 1, self.job_count, self.name),
                **options,
            )._job_task(index, launch, params, workload=self.workload)
            for index in range(self.job_count)
        ]
        # One graph per launch, even of independent jobs (a group: no
        # dependencies): queue_job then looks for an active job with the same
        # identity key once per graph, not once per job. action_launch has
        # checked under a lock that none is active. A graph builds its jobs in
        # no particular order: build them here, in index order, so that their
        # date_created, which orders the runner's dispatch, follows the index.
        for delayable in delayables:
            delayable._build_job()
        tail = []
        if self.shape == "independent":
            graph = group(*delayables)
        elif self.shape == "chain":
            graph = chain(*delayables)
        else:
            reduce_job = self.delayable(
                identity_key=self._identity_key(-1),
                description="Async Lab reduce of %s" % self.name,
                **options,
            )._job_reduce(launch)
            graph = chain(group(*delayables), reduce_job)
            tail = [reduce_job]
        graph.delay()
        uuids = [d._generated_job.uuid for d in delayables + tail]
        self.write({"launch_count": launch, "launched_at": fields.Datetime.now()})
        _logger.info("burst %s launched: %d jobs on %s", self.id, len(uuids), self.channel)
        return uuids

    # ------------------------------------------------------------------
    # The jobs
    # ------------------------------------------------------------------
    def _job_store_values(self, job):
        """Tag each job of a burst with its burst and launch (queue_job's hook).

        queue_job writes these values whenever it stores the job: when it
        creates it, in the same INSERT, and at each change of state. No
        query of its own: a launch costs what queue_job's inserts cost.

        One hook for both job methods, not ``_job_store_values_for_<method>``:
        queue_job 17.0 (``Job._store_values_from_model``) calls the
        per-method hook, then ``_job_store_values``, which every model has,
        and keeps the values of the latter only.
        """
        values = super()._job_store_values(job)
        launch_arg = LAUNCH_ARG.get(job.method_name)
        if launch_arg is not None:
            values.update(
                async_lab_burst_id=self.id,
                async_lab_launch=job.args[launch_arg],
                # Stored as it fails, by the worker that ran it: when it let the worker go (to the
                # microsecond, as queue_job dates the other stages).
                async_lab_date_failed=datetime.now() if job.state == FAILED else False,
            )
        return values

    def _current_attempt(self):
        """0 on a job's first run, 1 on its first retry, and so on."""
        uuid = self.env.context.get("job_uuid")
        if not uuid:
            return 0
        self.env.cr.execute("SELECT retry FROM queue_job WHERE uuid = %s", [uuid])
        row = self.env.cr.fetchone()
        return row[0] if row else 0

    def _job_task(self, index, launch, params, workload):
        """Run task ``index`` of the burst's ``workload`` (a queue job).

        The workload comes with the job, as its parameters do: what was
        launched runs even if the burst is edited meanwhile, and a job does
        not read its burst.
        """
        self.ensure_one()
        self._wait_for_db_slot(workload)
        call = dict(params, **self._workload_settings(workload))
        if workload == "flaky":
            call["attempt"] = self._current_attempt()
        try:
            span = workloads.run_task(workload, call)
        except workloads.TransientError as exc:
            raise RetryableJobError(str(exc), seconds=1) from exc
        self._notify_job_done(span["pid"])
        return "task %d: pid %s, %.3f s, result %s" % (index, span["pid"], span["end"] - span["start"], span["result"])

    def _user_impact_finished(self):
        """Whether every job of the burst has ended. Commits first, for a fresh snapshot (a long-running caller)."""
        self.ensure_one()
        # Its one caller is the user-impact thread, in a cursor of its own
        # (async_lab.experiment._run_user_impact), never a request.
        # pylint: disable-next=invalid-commit
        self.env.cr.commit()
        self.env.cr.execute(
            "SELECT count(*) FROM queue_job WHERE async_lab_burst_id = %s AND state IN %s", [self.id, ACTIVE_STATES]
        )
        return not self.env.cr.fetchone()[0]

    def _worker_time_share(self, started, ended, workers):
        """Share of ``workers`` HTTP workers' time from ``started`` to ``ended`` (epoch) that the burst's jobs held.

        None without workers (threaded mode: jobs run in threads of the one process).

        A job holds its worker from date_started to its end: date_done when
        done; when failed, async_lab_date_failed (stored with the failure, see
        _job_store_values); when cancelled, date_cancelled. A failed or
        cancelled job without that date (found dead by queue_job's runner,
        which marks it failed in SQL, or failed before the field existed) has
        no known end and counts for nothing, rather than up to ``ended``.
        Only a job still started, or back to pending or enqueued for a retry,
        counts up to ``ended``.
        """
        self.ensure_one()
        if not workers or ended <= started:
            return None
        since, until = to_datetime(started), to_datetime(ended)
        self.env["queue.job"].flush_model()
        self.env.cr.execute(
            """SELECT coalesce(sum(greatest(0, date_part('epoch',
                          least(coalesce(date_done,
                                         CASE WHEN state = 'failed' THEN coalesce(async_lab_date_failed, date_started)
                                              WHEN state = 'cancelled' THEN coalesce(date_cancelled, date_started)
                                         END,
                                         %(until)s), %(until)s)
                          - greatest(date_started, %(since)s)))), 0)
                 FROM queue_job WHERE async_lab_burst_id = %(burst)s AND date_started IS NOT NULL""",
            {"since": since, "until": until, "burst": self.id},
        )
        return round(self.env.cr.fetchone()[0] / (workers * (ended - started)), 3)

    @api.model
    def _job_notify_interval(self):
        """Seconds between two job notifications from one process.

        Jobs run in HTTP workers (the one process of a threaded server), at
        most as many at once as the root channel's capacity: each such
        process waits JOB_NOTIFY_INTERVAL times their number, so that
        together they send about one notification per JOB_NOTIFY_INTERVAL.
        """
        running = max(1, config["workers"] or 0)
        capacity = self.env["async_lab.stats"]._channel_capacity("root")
        return JOB_NOTIFY_INTERVAL * min(running, capacity or running)

    def _notify_job_done(self, pid):
        """Tell dashboards that jobs finished, throttled (see _job_notify_interval).

        A bus notification opens a PostgreSQL connection after commit (Odoo
        does not pool the ones to "postgres"), which costs a short job much
        of its time: so one notification per interval, not one per job. The
        payload's ``settle_ms`` tells dashboards when to refresh once more,
        for the jobs that finish during the silence after the last
        notification.
        """
        now, dbname = time.monotonic(), self.env.cr.dbname
        if now < _next_job_notify.get(dbname, float("-inf")):
            return
        interval = self._job_notify_interval()
        _next_job_notify[dbname] = now + interval
        self.env["async_lab.stats"]._notify_dashboard(
            "job", {"burst_id": self.id, "pid": pid, "settle_ms": round(1000 * interval)}
        )

    def _job_reduce(self, launch):
        """Fan-in: summarise the tasks of one launch (a queue job)."""
        self.ensure_one()
        self.env.cr.execute(
            """SELECT count(*), count(DISTINCT worker_pid),
                      extract(epoch FROM max(date_done) - min(date_started))
                 FROM queue_job
                WHERE async_lab_burst_id = %s AND async_lab_launch = %s AND state = 'done'
                  AND identity_key != %s""",
            [self.id, launch, self._identity_key(-1)],
        )
        done, pids, span = self.env.cr.fetchone()
        return "reduced %d tasks run by %d processes in %.3f s" % (done, pids, span or 0.0)

    def _related_action_burst(self):
        """queue_job's related action: open the job's burst."""
        return {
            "type": "ir.actions.act_window",
            "name": _("Burst"),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
        }

    # ------------------------------------------------------------------
    # Progress
    # ------------------------------------------------------------------
    def _progress(self):
        """Counts, makespan and per-PID spread of each burst's last launch."""
        result = {burst.id: {"states": {}, "pids": {}, "first": None, "last": None} for burst in self}
        if not self.ids:
            return result
        self.flush_model(["launch_count"])
        self.env["queue.job"].flush_model(
            ["state", "worker_pid", "date_created", "date_done", "async_lab_burst_id", "async_lab_launch"]
        )
        cr = self.env.cr
        cr.execute(
            SQL(
                """
            SELECT j.async_lab_burst_id, j.state, j.worker_pid, count(*),
                   min(j.date_created), max(j.date_done)
              FROM queue_job j JOIN async_lab_burst b ON b.id = j.async_lab_burst_id
             WHERE j.async_lab_burst_id = ANY(%s) AND j.async_lab_launch = b.launch_count
             GROUP BY 1, 2, 3
            """,
                self.ids,
            )
        )
        for burst_id, state, pid, count, first, last in cr.fetchall():
            progress = result[burst_id]
            progress["states"][state] = progress["states"].get(state, 0) + count
            if pid and state == "done":
                progress["pids"][pid] = progress["pids"].get(pid, 0) + count
            progress["first"] = min(filter(None, [progress["first"], first]), default=None)
            progress["last"] = max(filter(None, [progress["last"], last]), default=None)
        return result

    @api.depends("launch_count")
    def _compute_progress(self):
        progress = self._progress() if self.ids else {}
        failed = {}
        if self.ids:
            failed_jobs = (
                self.env["queue.job"].sudo().search([("async_lab_burst_id", "in", self.ids), ("state", "=", "failed")])
            )
            for job in failed_jobs:
                if job.async_lab_launch == job.async_lab_burst_id.launch_count:
                    failed.setdefault(job.async_lab_burst_id.id, self.env["queue.job"])
                    failed[job.async_lab_burst_id.id] |= job
        for burst in self:
            info = progress.get(burst.id) or {"states": {}, "pids": {}, "first": None, "last": None}
            states = info["states"]
            for state in JOB_STATES:
                burst["jobs_%s" % state] = states.get(state, 0)
            burst.jobs_total = sum(states.values())
            active = sum(states.get(s, 0) for s in ACTIVE_STATES)
            if not burst.jobs_total:
                burst.state = "draft"
            elif active:
                burst.state = "running"
            else:
                burst.state = "failed" if states.get("failed") else "done" if states.get("done") else "cancelled"
            makespan = (info["last"] - info["first"]).total_seconds() if info["first"] and info["last"] else 0.0
            burst.makespan = makespan
            burst.jobs_per_second = states.get("done", 0) / makespan if makespan > 0 else 0.0
            pids = sorted(info["pids"].items(), key=lambda kv: (-kv[1], kv[0]))
            burst.pid_distribution = [{"pid": pid, "jobs": count} for pid, count in pids]
            burst.pid_summary = ", ".join("%s: %s" % (pid, count) for pid, count in pids)
            burst.failed_job_ids = failed.get(burst.id, self.env["queue.job"])

    def action_open_jobs(self):
        self.ensure_one()
        domain = [("async_lab_burst_id", "=", self.id)]
        state = self.env.context.get("job_state")
        if state:
            domain.append(("state", "=", state))
        return {
            "type": "ir.actions.act_window",
            "name": _("Jobs of %(name)s", name=self.name),
            "res_model": "queue.job",
            "view_mode": "tree,form",
            "domain": domain,
            "context": {"search_default_group_by_state": 0},
        }

    # ------------------------------------------------------------------
    # Cancel, reset, reconcile
    # ------------------------------------------------------------------
    @api.model
    def _check_manager(self):
        if not self.env.user.has_group(GROUP_MANAGER):
            raise AccessError(_("Only Async Lab managers may cancel or reset lab runs."))

    @api.model
    def _cancel_jobs(self, where, params, reason):
        """Cancel the active lab jobs ``WHERE <where>`` (SQL, with ``params``),
        stating ``reason`` as their result; return their ids."""
        self.env["queue.job"].flush_model()
        self.env.cr.execute(
            SQL(
                """UPDATE queue_job SET state = 'cancelled', result = %s,
                          date_cancelled = now() at time zone 'UTC'
                    WHERE state IN %s AND (%s) RETURNING id""",
                reason,
                CANCELLABLE_STATES,
                SQL(where, *params),
            )
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        self.env["queue.job"].invalidate_model()
        return ids

    def action_cancel(self):
        """Cancel every job of the bursts still to run, but the running ones (Managers); logged."""
        for burst in self:
            burst._jobs_action("cancel_jobs")
        return True

    def action_requeue(self):
        """Requeue the bursts' failed and cancelled jobs, with queue_job's own ``requeue`` (Managers); logged."""
        for burst in self:
            burst._jobs_action("requeue_jobs")
        return True

    def _jobs_action(self, action):
        """Cancel (``cancel_jobs``) or requeue (``requeue_jobs``) this burst's jobs now, and
        record it in the server control log; return that record."""
        self.ensure_one()
        self._check_manager()
        if action == "cancel_jobs":
            reason = _("Cancelled by %(user)s (Async Lab burst)", user=self.env.user.name)
            count = len(self._cancel_jobs("async_lab_burst_id = %s", [self.id], reason))
            message = _("%(count)s jobs of burst %(burst)s cancelled.", count=count, burst=self.name)
        else:
            jobs = (
                self.env["queue.job"]
                .sudo()
                .search([("async_lab_burst_id", "=", self.id), ("state", "in", ("failed", "cancelled"))])
            )
            jobs.requeue()
            count = len(jobs)
            message = _("%(count)s jobs of burst %(burst)s requeued.", count=count, burst=self.name)
        _logger.info("burst %s: %s, %d jobs, by %s", self.id, action, count, self.env.user.login)
        return self.env["async_lab.control"].sudo()._log_burst_action(action, self, count, message)

    def action_reset(self):
        """Cancel the bursts' jobs still to run, then delete their jobs: back to draft (Managers).

        A running job is left to end (deleting it would wait for it: its
        worker holds its lock).
        """
        self.action_cancel()
        self.env["queue.job"].sudo().search(
            [("async_lab_burst_id", "in", self.ids), ("state", "!=", "started")]
        ).unlink()
        self.write({"launched_at": False})
        return True

    @api.model
    def _cron_reconcile(self, now=None):
        """Async Lab: end stuck bursts and experiments.

        A job of a chain or fan-out waits for its dependencies for ever when
        one of them failed or was cancelled: after
        async_lab.stuck_timeout_minutes without a requeue of the failed job,
        it is cancelled, with the reason as its result. Then the
        experiments' runs are reconciled (async_lab.experiment._reconcile).
        """
        now = now or fields.Datetime.now()
        minutes = self.env["ir.config_parameter"]._async_lab_int("async_lab.stuck_timeout_minutes")
        since = now - timedelta(minutes=minutes)
        reason = _(
            "Cancelled by Async Lab's reconcile: a job it depends on failed or was cancelled, and was "
            "not requeued within %(minutes)s minutes.",
            minutes=minutes,
        )
        cancelled = self._cancel_jobs(
            """state = 'wait_dependencies'
               AND (async_lab_burst_id IS NOT NULL OR async_lab_experiment_id IS NOT NULL)
               AND EXISTS (SELECT 1 FROM queue_job dead WHERE dead.graph_uuid = queue_job.graph_uuid
                              AND dead.state IN ('failed', 'cancelled')
                              AND coalesce(dead.date_cancelled, dead.date_started, dead.date_created) < %s)""",
            [since],
            reason,
        )
        if cancelled:
            _logger.info("reconcile: %d lab jobs waiting for a failed dependency cancelled", len(cancelled))
        self.env["async_lab.experiment"]._reconcile(now, since)
        return len(cancelled)

    @api.model
    def _prune_finished(self, now):
        """Delete bursts launched before the retention period with nothing left to run."""
        days = self.env["ir.config_parameter"]._async_lab_int("async_lab.burst_retention_days")
        self.flush_model(["launched_at"])
        self.env["queue.job"].flush_model(["state", "async_lab_burst_id"])
        self.env.cr.execute(
            """SELECT b.id FROM async_lab_burst b
                WHERE b.launched_at < %s
                  AND NOT EXISTS (SELECT 1 FROM queue_job j
                                   WHERE j.async_lab_burst_id = b.id AND j.state IN %s)""",
            [now - timedelta(days=days), ACTIVE_STATES],
        )
        old = self.browse([row[0] for row in self.env.cr.fetchall()])
        # Their jobs go with them, failed ones included (queue_job's autovacuum
        # deletes done and cancelled jobs only, after a while).
        self.env["queue.job"].sudo().search([("async_lab_burst_id", "in", old.ids)]).unlink()
        old.unlink()
        return len(old)

    @api.model
    def _cron_demo_tick(self):
        """Async Lab: demo ticker. Keeps a demo dashboard alive with small bursts."""
        demo = self.env.ref("async_lab.async_lab_burst_demo", raise_if_not_found=False)
        if not demo:
            raise UserError(_("The demo burst (async_lab.async_lab_burst_demo) was deleted: update the module."))
        if demo._active_job_count():
            return False
        demo._enqueue()
        return True

    def _demo_run(self):
        """Demo data: launch each burst and run its jobs in this process, one after another.

        No job runner runs while a module installs, so the demo's jobs go
        through the steps that the runner and an HTTP worker would take
        (enqueued, received, started, performed, done), without their
        commits: the install's transaction keeps them. Their dates and PID
        are real, those of this process.
        """
        for burst in self:
            for uuid in burst._enqueue():
                job = Job.load(self.env, uuid)
                job.set_enqueued()
                job.store()
                self.env.cr.execute(
                    "UPDATE queue_job SET async_lab_date_received = %s WHERE uuid = %s", [datetime.now(), uuid]
                )
                job.set_started()
                job.store()
                job.perform()
                self.env.flush_all()
                job.set_done()
                job.store()
        self.env.flush_all()
        return True

    # ------------------------------------------------------------------
    # API (POST /async_lab/jobs)
    # ------------------------------------------------------------------
    @api.model
    def api_create_and_launch(self, workload, params=None, count=10, channel=None, priority=10):
        """Create a burst from API input and launch it; return its job UUIDs."""
        params = self._clean_params(workload, params or {})
        unknown = set(params) - set(catalogue.PARAM_FIELDS)
        if unknown:
            raise ValidationError(_("Parameters not supported by bursts: %(names)s", names=", ".join(sorted(unknown))))
        channel = channel or catalogue.default_channel(workload)
        if channel not in dict(catalogue.CHANNELS):
            raise ValidationError(
                _(
                    "Unknown channel %(channel)r; choose one of: %(channels)s",
                    channel=channel,
                    channels=", ".join(dict(catalogue.CHANNELS)),
                )
            )
        # A JSON body's numbers: ints only.
        count = bounded("count", count, 1, MAX_JOBS, exact=True)
        priority = max(bounded("priority", priority, 0, MAX_PRIORITY, exact=True), MIN_PRIORITY)
        burst = self.create(
            {"workload": workload, "job_count": count, "channel": channel, "priority": priority, **params}
        )
        return burst, burst._launch()
