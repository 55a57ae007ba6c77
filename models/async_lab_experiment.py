# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging
import os
import threading
import time
from datetime import timedelta

import psycopg2
import requests

from odoo import SUPERUSER_ID, _, api, fields, http, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.modules.registry import Registry
from odoo.service import security
from odoo.tools import config

from odoo.addons.queue_job.delay import chain, group
from odoo.addons.queue_job.exception import RetryableJobError

from ..lib import catalogue, impact, strategies, theory, workloads
from ..lib.catalogue import CHANNEL_CPU, CHANNEL_IO
from ..lib.groups import GROUP_MANAGER
from ..process_tracker import server_mode
from .async_lab_burst import LOCK_RUN, LOCK_SPACE, LabBusy
from .async_lab_workload_mixin import bounded
from .queue_job import ACTIVE_STATES

_logger = logging.getLogger(__name__)

#: The fields of a result that the dashboard's lab panel shows.
RESULT_KEYS = ("strategy", "wall_seconds", "startup_seconds", "speedup", "ideal", "expected", "efficiency", "verdict")

#: An experiment must be predicted to finish within this share of the
#: worker limits (limit_time_real, limit_time_cpu) it runs under.
LIMIT_SHARE = 0.5
#: Cap when the server has no time limits.
DEFAULT_CAP_SECONDS = 120
#: A lab run is cut at this share of the prefork worker's limits
#: (limit_time_real, limit_time_cpu): the watchdog would kill it at 100 %.
DEADLINE_SHARE = 0.8
#: The preset and kind of experiment that measures what a burst costs users.
USER_IMPACT = "user_impact"
#: The user-impact probe: seconds measured at rest, longest burst measured,
#: requests in flight at most (lib/impact.py).
IDLE_SECONDS = 10
MAX_BURST_SECONDS = 120
#: The probe's interactive-like request: a web client's small read of the user's own name.
PROBE_TIMEOUT = 30
#: Seconds between two looks of the probe at the experiment's state: it stops
#: once the experiment is cancelled, reset or ended by the reconcile.
STATE_CHECK_SECONDS = 1.0
#: The presets reproduce the tables of the classic "threads vs processes vs
#: asyncio" talk: key -> (name, workload, params, tasks).
PRESETS = {
    "io_sleep": ("I/O-bound: 16 × 200 ms sleep", "io_sleep", {"ms": 200}, 16),
    "io_http": ("I/O-bound: 16 × HTTP call", "io_http", {"ms": 200}, 16),
    "cpu_gil": ("CPU-bound, GIL held: 8 × pure-Python loop", "cpu_python", {"n": 10_000_000}, 8),
    "cpu_nogil": ("CPU-bound, GIL released: 8 × hashlib on 32 MB", "cpu_gil_free", {"mb": 32}, 8),
    USER_IMPACT: ("User impact: 40 × 1 s jobs against a steady probe", "io_sleep", {"ms": 1000}, 40),
}
STRATEGY_FIELDS = {
    theory.THREADS: "use_threads",
    theory.PROCESSES: "use_processes",
    theory.ASYNCIO: "use_asyncio",
    theory.QUEUE_JOB: "use_queue_job",
}
#: How the result of a failed queue_job task starts (see _job_task).
TASK_ERROR = "error:"
#: How long the reconcile leaves an experiment whose jobs all ended before it
#: ends it: its last job commits the experiment's end with its own.
RECONCILE_GRACE = timedelta(minutes=1)
#: Seconds between two looks of a queued experiment at a busy lab.
WAIT_TURN_SECONDS = 5
#: Seconds a measured calibration of this machine is reused.
CALIBRATION_TTL = 300
_calibration = {}


def calibration():
    """workloads.calibrate(), measured at most every CALIBRATION_TTL seconds."""
    now = time.monotonic()
    if not _calibration or now - _calibration["at"] > CALIBRATION_TTL:
        _calibration.update(at=now, values=workloads.calibrate())
    return _calibration["values"]


class AsyncLabExperiment(models.Model):
    """One workload, N tasks, run with several strategies and compared."""

    _name = "async_lab.experiment"
    _inherit = ["async_lab.workload.mixin"]
    _description = "Concurrency experiment"
    _order = "id desc"

    name = fields.Char(required=True, default=lambda self: _("New experiment"))
    preset = fields.Selection([(key, value[0]) for key, value in PRESETS.items()])
    # A new experiment is the io_sleep preset, with the CPU presets' sizes ready.
    ms = fields.Integer(default=PRESETS["io_sleep"][2]["ms"])
    n = fields.Integer(default=PRESETS["cpu_gil"][2]["n"])
    mb = fields.Integer(default=PRESETS["cpu_nogil"][2]["mb"])
    tasks = fields.Integer(default=16, required=True, help="At most %d." % strategies.MAX_TASKS)
    pool_size = fields.Integer(
        group_operator=False,
        help="Workers of the thread/process pools and the asyncio semaphore. "
        "0: one per task (threads, asyncio), one per core (processes).",
    )
    kind = fields.Selection(
        [("strategies", "Strategies compared"), (USER_IMPACT, "User impact")],
        default="strategies",
        required=True,
        help="User impact: a burst of its tasks as queue jobs on a channel, against a probe of interactive "
        "requests sent at a steady rate, at rest and during the burst.",
    )
    impact_channel = fields.Selection(catalogue.CHANNELS, "Burst channel", default=CHANNEL_IO)
    probe_rate = fields.Integer("Probe requests / s", default=5, group_operator=False)
    impact = fields.Json(readonly=True, copy=False, help="The probe at rest and during the burst (lib/impact.py).")
    idle_p50_ms = fields.Float("At rest p50 (ms)", readonly=True, copy=False, digits=(16, 1), group_operator=False)
    idle_p95_ms = fields.Float("At rest p95 (ms)", readonly=True, copy=False, digits=(16, 1), group_operator=False)
    burst_p50_ms = fields.Float(
        "During burst p50 (ms)", readonly=True, copy=False, digits=(16, 1), group_operator=False
    )
    burst_p95_ms = fields.Float(
        "During burst p95 (ms)", readonly=True, copy=False, digits=(16, 1), group_operator=False
    )
    workers_held = fields.Float(
        "HTTP workers held by jobs",
        readonly=True,
        copy=False,
        digits=(16, 2),
        group_operator=False,
        help="Share of the HTTP workers' time that the burst's jobs held while it ran.",
    )
    burst_id = fields.Many2one(
        "async_lab.burst",
        readonly=True,
        copy=False,
        ondelete="set null",
        help="User impact: the burst of queue jobs its run launched. Cancelling or resetting the experiment "
        "cancels the burst's jobs still to run.",
    )
    # Administrators only: with it, anyone could call the server as the experiment's user while the run lasts.
    probe_sid = fields.Char(
        "Probe session",
        readonly=True,
        copy=False,
        groups="base.group_system",
        help="Technical: the id of the probe's web session while the run lasts, so that the reconcile can "
        "delete it if the thread that made it died.",
    )
    use_threads = fields.Boolean("Threads", default=True)
    use_processes = fields.Boolean("Processes", default=True)
    use_asyncio = fields.Boolean("asyncio", default=True)
    use_queue_job = fields.Boolean("queue_job fan-out", default=True)
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("queued", "Queued"),
            ("running", "Running"),
            ("done", "Done"),
            ("failed", "Failed"),
            ("timeout", "Timed out"),
            ("cancelled", "Cancelled"),
        ],
        default="draft",
        readonly=True,
        copy=False,
        help="Timed out: the run passed its deadline and what was left was cancelled (see the message).",
    )
    error = fields.Text(readonly=True, copy=False)
    environment = fields.Json(readonly=True, copy=False)
    environment_summary = fields.Char(compute="_compute_environment_summary")
    predicted_seconds = fields.Float(compute="_compute_predicted_seconds", digits=(16, 1))
    started_at = fields.Datetime(readonly=True, copy=False)
    finished_at = fields.Datetime(readonly=True, copy=False)
    result_ids = fields.One2many("async_lab.experiment.result", "experiment_id", readonly=True, copy=False)
    run_count = fields.Integer(
        "Runs", readonly=True, copy=False, help="Its jobs carry the number of the run that created them."
    )
    job_ids = fields.One2many("queue.job", "async_lab_experiment_id", readonly=True)

    _sql_constraints = [
        (
            "tasks_range",
            "CHECK(tasks BETWEEN 1 AND %d)" % strategies.MAX_TASKS,
            "An experiment runs between 1 and %d tasks." % strategies.MAX_TASKS,
        ),
        (
            "pool_size_range",
            "CHECK(pool_size BETWEEN 0 AND %d)" % strategies.MAX_POOL_SIZE,
            "The pool size is between 0 (automatic) and %d." % strategies.MAX_POOL_SIZE,
        ),
    ]

    @api.onchange("preset")
    def _onchange_preset(self):
        if self.preset:
            name, workload, params, tasks = PRESETS[self.preset]
            kind = USER_IMPACT if self.preset == USER_IMPACT else "strategies"
            self.update(dict(params, name=name, workload=workload, tasks=tasks, kind=kind))

    def _strategies(self):
        return [theory.SEQUENTIAL] + [s for s, field in STRATEGY_FIELDS.items() if self[field]]

    def _lab_channel(self):
        return catalogue.lab_channel(self.workload)

    def _channel_capacity(self):
        return self.env["async_lab.stats"]._channel_capacity(self._lab_channel())

    @api.depends("workload", *catalogue.PARAM_FIELDS, "tasks", "pool_size", *STRATEGY_FIELDS.values())
    def _compute_predicted_seconds(self):
        for rec in self:
            try:
                rec.predicted_seconds = rec._predict()
            except (workloads.WorkloadError, KeyError):
                rec.predicted_seconds = 0.0

    def _predict(self):
        if self.kind == USER_IMPACT:
            capacity = self.env["async_lab.stats"]._channel_capacity(self.impact_channel or CHANNEL_IO) or 1
            task = workloads.WORKLOADS[self.workload].estimate_seconds(self._run_params(), calibration())
            return IDLE_SECONDS + -(-self.tasks // capacity) * task
        return strategies.predict_seconds(
            self.workload,
            self._run_params(),
            self.tasks,
            self._strategies(),
            calibration(),
            strategies.usable_cores(),
            pool_size=self.pool_size or None,
            capacity=self._channel_capacity(),
        )

    @api.depends("environment")
    def _compute_environment_summary(self):
        for rec in self:
            env = rec.environment or {}
            rec.environment_summary = env and _(
                "%(cores)s cores, Python %(python)s (GIL %(gil)s), %(mode)s mode, "
                "limit_time_cpu %(cpu)ss, limit_time_real %(real)ss, served by PID %(pid)s",
                cores=env.get("cores"),
                python=env.get("python"),
                gil="on" if env.get("gil_enabled") else "off",
                mode=env.get("mode"),
                cpu=env.get("limit_time_cpu"),
                real=env.get("limit_time_real"),
                pid=env.get("pid"),
            )

    @api.model
    def _run_seconds_allowed(self):
        """Seconds a lab run may last before what is left is cancelled.

        In prefork mode, DEADLINE_SHARE of the worker's limit_time_real and
        limit_time_cpu: the run stops before the watchdog kills the worker.
        Otherwise (threaded mode, or no limits) async_lab.run_timeout_seconds.
        """
        limits = [config[key] for key in ("limit_time_real", "limit_time_cpu") if config.get(key, 0) > 0]
        if config["workers"] and limits:
            return DEADLINE_SHARE * min(limits)
        return self.env["ir.config_parameter"]._async_lab_int("async_lab.run_timeout_seconds")

    @staticmethod
    def _duration_cap():
        limits = [config[key] for key in ("limit_time_real", "limit_time_cpu") if config.get(key, 0) > 0]
        return LIMIT_SHARE * min(limits) if limits else DEFAULT_CAP_SECONDS

    def _check_user_impact(self):
        if not 1 <= self.probe_rate <= impact.MAX_RATE:
            raise ValidationError(_("Probe requests / s must be between 1 and %(max)s.", max=impact.MAX_RATE))
        predicted = self._predict()
        if predicted > IDLE_SECONDS + MAX_BURST_SECONDS:
            raise ValidationError(
                _(
                    "This burst would take about %(predicted).0f s on its channel, more than the %(cap)s s the "
                    "probe follows it. Use fewer or shorter jobs.",
                    predicted=predicted,
                    cap=MAX_BURST_SECONDS,
                )
            )

    @api.constrains(
        "workload", *catalogue.PARAM_FIELDS, "tasks", "pool_size", *STRATEGY_FIELDS.values(), "kind", "probe_rate"
    )
    def _check_experiment(self):
        for rec in self:
            if workloads.WORKLOADS[rec.workload].kind == workloads.KIND_CONTROL:
                raise ValidationError(
                    _("%(workload)s exercises failures, not speed: pick another workload.", workload=rec.workload)
                )
            if rec.kind == USER_IMPACT:
                rec._check_user_impact()
                continue
            predicted, cap = rec._predict(), self._duration_cap()
            if predicted > cap:
                raise ValidationError(
                    _(
                        "This experiment would take about %(predicted).0f s, more than %(cap).0f s (half the "
                        "worker's limit_time_real/limit_time_cpu it runs under). Use fewer tasks or smaller tasks.",
                        predicted=predicted,
                        cap=cap,
                    )
                )

    # ------------------------------------------------------------------
    # Running
    # ------------------------------------------------------------------
    @api.model
    def _job_prepare_context_before_enqueue_keys(self):
        """The run number travels with each job, to the jobs it enqueues."""
        return super()._job_prepare_context_before_enqueue_keys() + ("async_lab_run",)

    def _job_store_values(self, job):
        """Tag each job of an experiment with the experiment and its run (queue_job's hook)."""
        values = dict(super()._job_store_values(job), async_lab_experiment_id=self.id)
        if self.env.context.get("async_lab_run"):
            values["async_lab_launch"] = self.env.context["async_lab_run"]
        return values

    def _check_manager(self):
        if not self.env.user.has_group(GROUP_MANAGER):
            raise AccessError(_("Only Async Lab managers may run experiments: they create load."))

    def action_run(self):
        """Run the experiment as a queue job in the CPU channel."""
        self._check_manager()
        for rec in self:
            if rec.state in ("queued", "running"):
                raise UserError(_("Experiment %(name)s is already queued or running.", name=rec.name))
            self.env["async_lab.burst"]._check_lab_job_cap(rec._run_job_count())
            if rec.kind == USER_IMPACT:
                rec._check_probe_user()
            rec.result_ids.unlink()
            # The previous runs' jobs stay in queue_job, tagged with their run
            # number: they do not count in this one's figures.
            run = rec.run_count + 1
            rec.write(
                {
                    "state": "queued",
                    "error": False,
                    "started_at": False,
                    "finished_at": False,
                    "run_count": run,
                    "burst_id": False,
                }
            )
            if rec.kind == USER_IMPACT:
                rec._start_user_impact()
                continue
            rec.with_context(async_lab_run=run).with_delay(
                channel=CHANNEL_CPU, max_retries=1, description=_("Async Lab experiment: %(name)s", name=rec.name)
            )._job_run()
        return True

    def _run_job_count(self):
        """The queue jobs a run enqueues, at most, for async_lab.max_active_jobs.

        User impact: the burst's jobs only, one per task (independent jobs,
        see _run_user_impact; the run itself is a thread, not a job).
        Strategies: the run's own job, then with queue_job the no-op jobs, a
        step, the tasks and the collector.
        """
        self.ensure_one()
        if self.kind == USER_IMPACT:
            return self.tasks
        return 1 + (2 * self.tasks + 2) * self.use_queue_job

    @api.model
    def run_preset(self, key):
        """Create an experiment from preset ``key`` and run it."""
        self._check_manager()
        if key not in PRESETS:
            raise ValidationError(
                _("Unknown preset %(key)r; choose one of: %(presets)s", key=key, presets=", ".join(PRESETS))
            )
        name, workload, params, tasks = PRESETS[key]
        kind = USER_IMPACT if key == USER_IMPACT else "strategies"
        experiment = self.create(dict(params, name=name, preset=key, workload=workload, tasks=tasks, kind=kind))
        experiment.action_run()
        return {"experiment_id": experiment.id}

    @api.model
    def get_presets(self):
        self.check_access_rights("read")  # Async Lab users, as the experiments' list
        labels = dict(self._fields["preset"]._description_selection(self.env))  # in the user's language
        return [{"key": key, "name": labels[key]} for key in PRESETS]

    def _environment(self):
        return dict(
            strategies.environment(),
            mode=server_mode(),
            pid=os.getpid(),
            limit_time_cpu=config.get("limit_time_cpu"),
            limit_time_real=config.get("limit_time_real"),
            channel=self._lab_channel(),
            channel_capacity=self._channel_capacity(),
        )

    def _server_slots(self, queue_job=False):
        """How many of the tasks' calls this server answers at once, or None.

        Only io_http tasks call a server: this one. In prefork mode its free
        HTTP workers answer them, one call each: all but the one running the
        experiment, or, for the queue_job strategy, half of them (each task
        is itself a job, running in an HTTP worker). A threaded server
        answers in threads: no such bound.
        """
        workers = config["workers"] or 0
        if "url" not in workloads.WORKLOADS[self.workload].settings or workers < 1:
            return None
        return max(1, workers // 2 if queue_job else workers - 1)

    def _lab_busy(self):
        """Why a lab run cannot start now on this database, or None.

        One lab run at a time per database: the run of an experiment's local
        strategies and POST /async_lab/run hold LOCK_RUN until their
        transaction ends, and an experiment stays "running" while its
        queue_job fan-out runs. When nothing is running, this takes the lock.
        """
        self.env.cr.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [LOCK_SPACE, LOCK_RUN])
        if not self.env.cr.fetchone()[0]:
            return _("Another lab run is in progress on this database.")
        self.flush_model(["state"])
        self.env.cr.execute(
            "SELECT name FROM async_lab_experiment WHERE state = 'running' AND id != ALL(%s) LIMIT 1",
            [self.ids or [0]],
        )
        row = self.env.cr.fetchone()
        return _("Experiment %(name)s is running on this database.", name=row[0]) if row else None

    @api.model
    def _db_pool_size(self, workload, tasks, strategy_names, pool_size):
        """The pool size to run ``workload`` with (None: the strategies' defaults).

        io_db tasks open their own connections: this transaction takes one
        slot per connection its largest pool would hold
        (see async_lab.burst._take_db_slots), and with fewer slots the pools
        are that small. Raise LabBusy if there is no slot at all.
        """
        if "dsn" not in workloads.WORKLOADS[workload].settings:
            return pool_size
        wanted = max(strategies.resolve_pool_size(name, tasks, pool_size) for name in strategy_names)
        Burst = self.env["async_lab.burst"]
        granted = Burst._take_db_slots(wanted)
        if not granted:
            raise LabBusy(
                _(
                    "The %(count)s connections of io_db are all in use (setting async_lab.max_db_connections): "
                    "retry later.",
                    count=Burst._max_db_connections(),
                )
            )
        return pool_size if granted >= wanted else granted

    def _job_run(self):
        """The experiment's job: local strategies here, then the queue_job fan-out.

        It waits its turn (postponed, retries not counted) while another lab
        run is in progress on the database.
        """
        self.ensure_one()
        if self.state != "queued":  # cancelled or reset meanwhile
            return "nothing to do: the experiment is %s" % self.state
        local = [s for s in self._strategies() if s != theory.QUEUE_JOB]
        try:
            busy = self._lab_busy()
            if busy:
                raise LabBusy(busy)
            pool_size = self._db_pool_size(self.workload, self.tasks, local, self.pool_size or None)
        except LabBusy as exc:
            raise RetryableJobError(str(exc), seconds=WAIT_TURN_SECONDS, ignore_retry=True) from exc
        allowed = self._run_seconds_allowed()
        deadline = time.monotonic() + allowed
        self.write({"state": "running", "started_at": fields.Datetime.now(), "environment": self._environment()})
        params = self._run_params()
        try:
            rows = strategies.compare(
                self.workload,
                params,
                self.tasks,
                local,
                pool_size=pool_size,
                server_slots=self._server_slots(),
                deadline=deadline,
            )
        except Exception as exc:  # record why on the experiment, keep the job's result readable
            _logger.exception("experiment %s failed", self.id)
            self._finish(error="%s: %s" % (type(exc).__name__, exc))
            return "failed: %s" % exc
        self._store_rows(rows)
        if rows and rows[-1]["timed_out"]:
            skipped = [name for name in local if name not in {row["strategy"] for row in rows}]
            self._finish(
                timeout=_(
                    "Stopped at its deadline of %(seconds).0f s: %(strategy)s was cut (%(cancelled)s of its tasks "
                    "cancelled)%(skipped)s. Use fewer or smaller tasks.",
                    seconds=allowed,
                    strategy=rows[-1]["strategy"],
                    cancelled=rows[-1]["cancelled"],
                    skipped=_(
                        ", not run: %(strategies)s",
                        strategies=", ".join(skipped + [theory.QUEUE_JOB] * self.use_queue_job),
                    )
                    if skipped or self.use_queue_job
                    else "",
                )
            )
        elif self.use_queue_job:
            self._fan_out()
        else:
            self._finish()
        return "%d strategies measured" % len(rows)

    def _demo_run(self):
        """Demo data: run each experiment's local strategies here, as its job would (measured, not made up)."""
        for rec in self:
            rec.state = "queued"
            rec._job_run()
        return True

    def _store_rows(self, rows):
        Result = self.env["async_lab.experiment.result"]
        for row in rows:
            Result.create(Result._values_from_row(self, row))

    # The queue_job strategy runs in steps, each a job: N no-op jobs through
    # the lab channel measure what dispatching a job costs here (runner,
    # HTTP, two commits per job); then N tasks of the workload through the
    # same channel; then the collector scores the tasks against the
    # sequential baseline and against what that dispatch cost lets one expect.
    def _fan_out(self):
        """queue_job strategy, step 1: the no-op fan-out, then step 2."""
        then = self.delayable(
            channel=CHANNEL_IO,
            max_retries=3,
            description=_("Async Lab experiment %(name)s: fan out the tasks", name=self.name),
        )._job_fan_out_tasks()
        self._enqueue_fan_out("_job_dispatch_probe", _("Async Lab experiment %(name)s: no-op %(index)s"), then)

    def _job_fan_out_tasks(self):
        """queue_job strategy, step 2: measure step 1, then the tasks and the collector."""
        self.ensure_one()
        if self.state != "running":  # cancelled, reset or ended by the reconcile meanwhile
            return "nothing to do: the experiment is %s" % self.state
        overhead = self._fan_out_figures("_job_dispatch_probe")["wall_seconds"] or 0.0
        collect = self.delayable(
            channel=CHANNEL_IO,
            max_retries=3,
            description=_("Async Lab experiment %(name)s: collect", name=self.name),
        )._job_collect(overhead)
        self._enqueue_fan_out("_job_task", _("Async Lab experiment %(name)s: task %(index)s"), collect)
        return "dispatch of %d no-op jobs: %.3f s" % (self.tasks, overhead)

    def _enqueue_fan_out(self, method, description, then):
        """``self.tasks`` jobs of ``method(index)`` through the lab channel, then ``then``."""
        tasks = [
            getattr(
                self.delayable(
                    channel=self._lab_channel(),
                    max_retries=1,
                    description=description % {"name": self.name, "index": index + 1},
                ),
                method,
            )(index)
            for index in range(self.tasks)
        ]
        chain(group(*tasks), then).delay()

    def _fan_out_figures(self, method):
        """Timestamps of this experiment's ``method`` jobs: first created to last done.

        ``spans`` are the (pid, start, end) of the jobs whose task succeeded,
        ``errors`` the results of those whose task failed (see _job_task).
        """
        self.env["queue.job"].flush_model()
        self.env.cr.execute(
            """SELECT count(*) FILTER (WHERE state = 'done'), count(*),
                      extract(epoch FROM min(date_created)), extract(epoch FROM max(date_done)),
                      array_agg(DISTINCT worker_pid) FILTER (WHERE worker_pid IS NOT NULL),
                      array_agg(extract(epoch FROM date_started) ORDER BY date_started) FILTER (WHERE NOT failed),
                      array_agg(extract(epoch FROM date_done) ORDER BY date_started) FILTER (WHERE NOT failed),
                      array_agg(worker_pid ORDER BY date_started) FILTER (WHERE NOT failed),
                      array_agg(result ORDER BY date_started) FILTER (WHERE failed)
                 FROM (SELECT *, coalesce(result LIKE %s, false) AS failed FROM queue_job
                        WHERE async_lab_experiment_id = %s AND async_lab_launch = %s
                          AND method_name = %s) AS jobs""",
            [TASK_ERROR + "%", self.id, self.run_count, method],
        )
        done, total, first, last, pids, starts, ends, workers, errors = self.env.cr.fetchone()
        return {
            "done": done,
            "total": total,
            "pids": pids or [],
            "errors": errors or [],
            "first": float(first) if first else None,
            "wall_seconds": float(last) - float(first) if first and last else None,
            "spans": [
                (pid, float(start), float(end))
                for pid, start, end in zip(workers or [], starts or [], ends or [], strict=True)
                if start is not None and end is not None
            ],
        }

    def _job_dispatch_probe(self, index):
        """A no-op job of the queue_job strategy, which probes what dispatching a job costs: the
        same reads as a task, no work."""
        self._run_params()
        span = workloads.run_task("noop", {})
        return "no-op %d: pid %s" % (index, span["pid"])

    def _job_task(self, index):
        """One task of the queue_job strategy.

        A task whose workload fails ends as a done job whose result starts
        with TASK_ERROR, as a failed task of the other strategies is counted,
        not raised: a failed job would leave the collector, which depends on
        every task, waiting for ever, and the experiment running.
        """
        self.env["async_lab.burst"]._wait_for_db_slot(self.workload)
        try:
            span = workloads.run_task(self.workload, self._run_params())
        except Exception as exc:
            _logger.info("experiment %s: task %d failed", self.id, index, exc_info=True)
            return "%s %s: %s" % (TASK_ERROR, type(exc).__name__, exc)
        return "task %d: pid %s, %.3f s" % (index, span["pid"], span["end"] - span["start"])

    def _job_collect(self, overhead_seconds=0.0):
        """Score the tasks from queue_job's timestamps: first created to last done."""
        self.ensure_one()
        if self.state != "running":
            return "nothing to do: the experiment is %s" % self.state
        figures = self._fan_out_figures("_job_task")
        baseline = self.result_ids.filtered(lambda r: r.strategy == theory.SEQUENTIAL)
        if not baseline or not figures["wall_seconds"]:
            self._finish(error=_("The queue_job fan-out left nothing to measure."))
            return "nothing to measure"
        outcomes = [
            {"pid": pid, "thread": 0, "start": start, "end": end, "result": None}
            for pid, start, end in figures["spans"]
        ]
        outcomes += [error[len(TASK_ERROR) :].strip() for error in figures["errors"]]
        outcomes += ["job not done"] * (figures["total"] - len(outcomes))
        result = strategies.RunResult.from_outcomes(
            theory.QUEUE_JOB,
            self.workload,
            self._channel_capacity() or 0,
            outcomes,
            started_at=figures["first"],
            wall_seconds=figures["wall_seconds"],
            cpu_seconds=0.0,
        )
        wait = workloads.WORKLOADS[self.workload].wait_seconds(self._user_params())
        row = strategies.score(
            result,
            baseline.wall_seconds,
            strategies.usable_cores(),
            capacity=self._channel_capacity(),
            overhead_seconds=overhead_seconds,
            wait_seconds=wait,
            server_slots=self._server_slots(queue_job=True),
        )
        self._store_rows([row])
        self._finish()
        return "queue_job: %d/%d done by %d processes in %.3f s" % (
            figures["done"],
            figures["total"],
            len(figures["pids"]),
            result.wall_seconds,
        )

    def _finish(self, error=None, timeout=None, state=None):
        """End the run: done, or failed with ``error``, or timed out with ``timeout``
        (a message), or ``state`` with the message given."""
        state = state or ("timeout" if timeout else "failed" if error else "done")
        self.write({"state": state, "error": timeout or error or False, "finished_at": fields.Datetime.now()})
        self.env["async_lab.stats"]._notify_dashboard("experiment", {"experiment_id": self.id})

    # ------------------------------------------------------------------
    # User impact: a burst against a steady probe of interactive requests
    # ------------------------------------------------------------------
    def _start_user_impact(self):
        """Run the measurement in a thread of this process once this transaction commits.

        Not as a queue job: the job would hold an HTTP worker and a slot of
        the root channel, the very resources it measures. The thread mostly
        waits for the probe's answers; its requests are served by any worker.
        """
        dbname, uid, experiment_id = self.env.cr.dbname, self.env.uid, self.id

        def start():
            thread = threading.Thread(
                target=_user_impact_thread,
                args=(dbname, uid, experiment_id),
                name="async_lab user impact %s" % experiment_id,
                daemon=True,
            )
            thread.start()

        self.env.cr.postcommit.add(start)

    def _run_user_impact(self):
        """Probe at rest, launch the burst, probe until it ends; store the figures. Commits as it goes.

        It stops once the experiment is no longer running (cancelled, reset
        or ended by the reconcile): the probe looks at its state, in a cursor
        of its own, every STATE_CHECK_SECONDS; the burst is launched and the
        figures written only if the experiment, locked, is still running.
        The probe's web session is deleted at the end, whatever the outcome.
        """
        self.ensure_one()
        cr = self.env.cr
        if self._locked_state() != "queued":  # cancelled or reset before this thread started
            return
        busy = self._lab_busy()
        if busy:
            self._finish(error=busy)
            return
        self.write({"state": "running", "started_at": fields.Datetime.now(), "environment": self._environment()})
        # This thread's own cursor (_user_impact_thread), no request's: "running"
        # must be visible to the other workers before the probe starts.
        # pylint: disable-next=invalid-commit
        cr.commit()
        session = None
        try:
            session = self._probe_session()
            self.sudo().probe_sid = session.sid
            # Reading the user for the session began a transaction: commit it, or
            # its snapshot, 10 s old after the idle probe, would be what the
            # burst's job-cap check counts. (This thread's own cursor.)
            # pylint: disable-next=invalid-commit
            cr.commit()
            send = self._probe_request(session.sid)
            stopped = impact.every(self._stopped_elsewhere, STATE_CHECK_SECONDS)
            idle = impact.probe(
                send, rate=self.probe_rate, done=stopped, max_seconds=IDLE_SECONDS, timeout=PROBE_TIMEOUT
            )
            if stopped() or self._locked_state() != "running":
                return
            burst, _uuids = self.env["async_lab.burst"].api_create_and_launch(
                self.workload, self._user_params(), count=self.tasks, channel=self.impact_channel
            )
            self.burst_id = burst
            # The burst's jobs must be visible to the job runner now, not when the
            # measurement ends. (This thread's own cursor.)
            # pylint: disable-next=invalid-commit
            cr.commit()
            started = time.time()
            during = impact.probe(
                send,
                rate=self.probe_rate,
                done=lambda: stopped() or burst._user_impact_finished(),
                max_seconds=MAX_BURST_SECONDS,
                timeout=PROBE_TIMEOUT,
            )
            ended = time.time()
            held = burst._worker_time_share(started, ended, config["workers"])
            result = dict(
                impact.impact(idle, during, held),
                burst_id=burst.id,
                burst_seconds=round(ended - started, 3),
                channel=self.impact_channel,
                root_capacity=self.env["async_lab.stats"]._channel_capacity("root"),
                http_workers=config["workers"] or None,
            )

            def ms(summary, key):
                return round(summary[key] * 1000, 1) if summary.get(key) is not None else False

            if self._locked_state() != "running":  # its end is not this thread's to write
                return
            self.write(
                {
                    "impact": result,
                    "idle_p50_ms": ms(idle, "p50"),
                    "idle_p95_ms": ms(idle, "p95"),
                    "burst_p50_ms": ms(during, "p50"),
                    "burst_p95_ms": ms(during, "p95"),
                    "workers_held": held if held is not None else False,
                }
            )
            self._finish()
        except Exception as exc:
            _logger.exception("user impact %s failed", self.id)
            cr.rollback()
            if self._locked_state() == "running":
                self._finish(error="%s: %s" % (type(exc).__name__, exc))
        finally:
            if session is not None:
                http.root.session_store.delete(session)
            self.exists()._end_probe_session()
            # The thread's last work, in its own cursor: the outcome is kept.
            # pylint: disable-next=invalid-commit
            cr.commit()

    def _locked_state(self):
        """The experiment's state as last committed; its row is then locked until this transaction ends.

        Commits first: in REPEATABLE READ, locking a row changed since the
        transaction's snapshot fails, so a fresh one is taken (and taken again
        if the row changes between the snapshot and the lock).
        """
        self.ensure_one()
        cr = self.env.cr
        for _attempt in range(3):
            # Only the user-impact thread calls this, in its own cursor: a fresh
            # snapshot, as the docstring says.
            # pylint: disable-next=invalid-commit
            cr.commit()
            try:
                cr.execute(
                    "SELECT state FROM async_lab_experiment WHERE id = %s FOR UPDATE", [self.id], log_exceptions=False
                )
            except psycopg2.errors.SerializationFailure:
                cr.rollback()
                continue
            row = cr.fetchone()
            self.invalidate_recordset(["state"])
            return row and row[0]
        return None

    def _stopped_elsewhere(self):
        """Whether the experiment is no longer running, as committed: read in a cursor of its own (the probe's done)."""
        with self.pool.cursor() as cr:
            cr.execute("SELECT state FROM async_lab_experiment WHERE id = %s", [self.id])
            row = cr.fetchone()
        return not row or row[0] != "running"

    def _check_probe_user(self):
        """The probe logs in as the experiment's user: refuse the superuser, whose session could do anything."""
        if self.env.uid == SUPERUSER_ID:
            raise UserError(
                _(
                    "A user-impact measurement logs its probe in as the user who runs it, and it cannot be the "
                    "superuser (__system__): run it as an Async Lab manager."
                )
            )

    def _probe_session(self):
        """A web session of this experiment's user, for the probe's requests only (deleted after)."""
        self._check_probe_user()
        session = http.root.session_store.new()
        session.update(
            http.get_default_session(),
            db=self.env.cr.dbname,
            uid=self.env.uid,
            login=self.env.user.login,
            context=dict(self.env.user.context_get()),
        )
        session.session_token = security.compute_session_token(session, self.env)
        http.root.session_store.save(session)
        return session

    def _end_probe_session(self):
        """Delete the probe's web session of each experiment that still has one.

        Sessions are files of this host's session store: a server of several
        hosts deletes it only from the host that made it (the run's own, at
        its end) or that shares its sessions directory.
        """
        store = http.root.session_store
        for rec in self.sudo().filtered("probe_sid"):
            if store.is_valid_key(rec.probe_sid):
                store.delete(store.get(rec.probe_sid))
            rec.probe_sid = False

    def _probe_request(self, sid):
        """One interactive-like request: the web client's read of the user's own name, over JSON-RPC.

        It raises TimeoutError when the server does not answer within
        PROBE_TIMEOUT: the probe counts it as a latency, not as an error.
        """
        server = impact.base_url(config.get("http_interface"), config["http_port"])
        url = server + "/web/dataset/call_kw/res.users/read"
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"model": "res.users", "method": "read", "args": [[self.env.uid], ["name"]], "kwargs": {}},
        }

        def send():
            with requests.Session() as client:
                client.trust_env = False  # this server: never through a proxy
                try:
                    response = client.post(url, json=body, cookies={"session_id": sid}, timeout=PROBE_TIMEOUT)
                except requests.Timeout as exc:
                    raise TimeoutError(str(exc)) from exc
                response.raise_for_status()
                if "error" in response.json():
                    raise RuntimeError(response.json()["error"].get("message"))

        return send

    # ------------------------------------------------------------------
    # Cancel, reset, reconcile
    # ------------------------------------------------------------------
    def _cancel_run_jobs(self, reason):
        """Cancel the jobs of the experiments' current runs still to run.

        A user-impact run's jobs are its burst's: they are cancelled (a
        running one is left to end), and its probe's web session is deleted;
        its thread sees the new state within STATE_CHECK_SECONDS and stops.
        """
        where = "async_lab_experiment_id = %s AND async_lab_launch IS NOT DISTINCT FROM %s"
        Burst = self.env["async_lab.burst"]
        for rec in self:
            Burst._cancel_jobs(where, [rec.id, rec.run_count or None], reason)
            if rec.burst_id:
                Burst._cancel_jobs("async_lab_burst_id = %s", [rec.burst_id.id], reason)
        self._end_probe_session()

    def action_cancel(self):
        """Stop the experiments' runs: their jobs still to run are cancelled (Managers)."""
        self.env["async_lab.burst"]._check_manager()
        message = _("Cancelled by %(user)s.", user=self.env.user.name)
        for rec in self.filtered(lambda r: r.state in ("queued", "running")):
            rec._cancel_run_jobs(message)
            rec._finish(state="cancelled", error=message)
        return True

    def action_reset(self):
        """Back to draft: the run's jobs still to run are cancelled, its results deleted (Managers)."""
        self.env["async_lab.burst"]._check_manager()
        self._cancel_run_jobs(_("Cancelled: experiment reset by %(user)s.", user=self.env.user.name))
        self.result_ids.unlink()
        self.write({"state": "draft", "error": False, "started_at": False, "finished_at": False})
        return True

    @api.model
    def _reconcile(self, now, since):
        """End the experiments that can no longer finish, with the reason.

        - Queued or running, and none of the jobs of their run is still to
          run (a job failed, was found dead or was cancelled): failed.
        - Queued or running for longer than async_lab.stuck_timeout_minutes
          (unchanged since ``since``): timed out, their jobs cancelled.
        - A user-impact measurement unchanged for longer than its longest run
          (its thread died with its process): failed, its burst's jobs still
          to run cancelled and its probe's web session deleted.
        """
        self.flush_model()
        self.env["queue.job"].flush_model()
        self.env.cr.execute(
            """SELECT e.id,
                      EXISTS (SELECT 1 FROM queue_job j WHERE j.async_lab_experiment_id = e.id
                                 AND j.async_lab_launch IS NOT DISTINCT FROM nullif(e.run_count, 0)
                                 AND j.state IN %s),
                      (SELECT coalesce(j.exc_name || ': ' || j.exc_message, j.result, j.state)
                         FROM queue_job j WHERE j.async_lab_experiment_id = e.id
                          AND j.async_lab_launch IS NOT DISTINCT FROM nullif(e.run_count, 0)
                          AND j.state IN ('failed', 'cancelled')
                        ORDER BY j.id DESC LIMIT 1),
                      e.kind
                 FROM async_lab_experiment e
                WHERE e.state IN ('queued', 'running') AND e.write_date < %s""",
            [ACTIVE_STATES, now - RECONCILE_GRACE],
        )
        longest = IDLE_SECONDS + MAX_BURST_SECONDS + 60
        for experiment_id, active, why, kind in self.env.cr.fetchall():
            experiment = self.browse(experiment_id)
            if kind == USER_IMPACT:
                # Its burst's jobs are the burst's, not its own: it runs as long as its thread may.
                active = experiment.write_date >= now - timedelta(seconds=longest)
            if not active and kind == USER_IMPACT:
                message = _(
                    "Ended by Async Lab's reconcile: the measurement did not end within %(seconds)s s, its "
                    "longest run; its burst's jobs still to run were cancelled.",
                    seconds=longest,
                )
                experiment._cancel_run_jobs(message)
                experiment._finish(error=message)
            elif not active:
                experiment._finish(
                    error=_(
                        "Ended by Async Lab's reconcile: its jobs stopped without finishing it (%(why)s).",
                        why=why or _("no job left"),
                    )
                )
            elif experiment.write_date < since:
                message = _(
                    "Ended by Async Lab's reconcile: no progress since %(since)s UTC; what was left was cancelled.",
                    since=experiment.write_date.replace(microsecond=0),
                )
                experiment._cancel_run_jobs(message)
                experiment._finish(timeout=message)
            else:
                continue
            _logger.info("reconcile: experiment %s ended (%s)", experiment_id, experiment.error)

    # ------------------------------------------------------------------
    # Dashboard and API
    # ------------------------------------------------------------------
    @api.model
    def get_latest_results(self):
        """The last finished experiment, for the dashboard's lab panel."""
        experiment = self.search([("state", "=", "done")], limit=1, order="finished_at desc, id desc")
        if not experiment:
            return None
        return {
            "id": experiment.id,
            "name": experiment.name,
            "workload": experiment.workload,
            "tasks": experiment.tasks,
            "state": experiment.state,
            "environment": experiment.environment,
            "kind": experiment.kind,
            "impact": experiment._impact_summary(),
            "results": [
                {
                    **{key: r[key] for key in RESULT_KEYS},
                    # Formatted here, as the verdict is (theory.format_speedup): one rule for both.
                    "speedup_label": theory.format_speedup(r.speedup),
                    "ideal_label": "%d" % r.ideal,
                    "expected_label": theory.format_speedup(r.expected) if r.expected else None,
                    "above_ideal": round(r.speedup, theory.SPEEDUP_DIGITS) > r.ideal,
                }
                for r in experiment.result_ids
            ],
        }

    def _impact_summary(self):
        """The figures of a user-impact run, as the API, the dashboard and the advisor show them; or None."""
        self.ensure_one()
        if self.kind != USER_IMPACT or not self.impact:
            return None
        return {
            "experiment_id": self.id,
            "finished_at": self.finished_at and self.finished_at.isoformat() + "Z",
            "channel": self.impact.get("channel"),
            "jobs": self.tasks,
            "probe_rate": self.probe_rate,
            "idle_p50_ms": self.idle_p50_ms,
            "idle_p95_ms": self.idle_p95_ms,
            "burst_p50_ms": self.burst_p50_ms,
            "burst_p95_ms": self.burst_p95_ms,
            "p95_ratio": self.impact.get("p95_ratio"),
            "burst_seconds": self.impact.get("burst_seconds"),
            "workers_held": self.impact.get("workers_held"),
            "http_workers": self.impact.get("http_workers"),
            "root_capacity": self.impact.get("root_capacity"),
            "requests": (self.impact.get("idle") or {}).get("requests", 0)
            + (self.impact.get("burst") or {}).get("requests", 0),
            "errors": (self.impact.get("idle") or {}).get("errors", 0)
            + (self.impact.get("burst") or {}).get("errors", 0),
            "timeouts": (self.impact.get("idle") or {}).get("timeouts", 0)
            + (self.impact.get("burst") or {}).get("timeouts", 0),
        }

    @api.model
    def _latest_impact(self):
        """The last finished user-impact run's figures, or None (the advisor cites it)."""
        experiment = self.sudo().search(
            [("kind", "=", USER_IMPACT), ("state", "=", "done")], limit=1, order="finished_at desc, id desc"
        )
        return experiment._impact_summary() if experiment else None

    @api.model
    def api_user_impact(self, workload, params=None, tasks=40, channel=CHANNEL_IO, rate=5):
        """Create a user-impact experiment from API input and run it; return it (Managers)."""
        self._check_manager()
        params = self._clean_params(workload, params or {})
        unknown = set(params) - set(catalogue.PARAM_FIELDS)
        if unknown:
            raise ValidationError(_("Parameters not supported: %(names)s", names=", ".join(sorted(unknown))))
        if channel not in dict(catalogue.CHANNELS):
            raise ValidationError(
                _(
                    "Unknown channel %(channel)r; choose one of: %(channels)s",
                    channel=channel,
                    channels=", ".join(dict(catalogue.CHANNELS)),
                )
            )
        tasks = bounded("tasks", tasks, 1, strategies.MAX_TASKS, exact=True)
        rate = bounded("rate", rate, 1, impact.MAX_RATE, exact=True)
        experiment = self.create(
            dict(
                params,
                name=_(
                    "User impact: %(tasks)s × %(workload)s on %(channel)s",
                    tasks=tasks,
                    workload=workload,
                    channel=channel,
                ),
                kind=USER_IMPACT,
                workload=workload,
                tasks=tasks,
                impact_channel=channel,
                probe_rate=rate,
            )
        )
        experiment.action_run()
        return experiment

    def api_impact_status(self):
        """A user-impact experiment's state and figures, for GET /async_lab/impact/<id>."""
        self.ensure_one()
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "error": self.error or None,
            "started_at": self.started_at and self.started_at.isoformat() + "Z",
            "finished_at": self.finished_at and self.finished_at.isoformat() + "Z",
            "impact": self._impact_summary(),
        }

    @api.model
    def api_run_inline(self, workload, params, strategy, tasks):
        """POST /async_lab/run: one strategy, measured inside the request."""
        self._check_manager()  # also reachable over RPC, not only through the route
        if strategy not in strategies.LOCAL_STRATEGIES:
            raise ValidationError(
                _(
                    "strategy must be one of %(names)s (queue_job is the background pattern: POST /async_lab/jobs)",
                    names=", ".join(strategies.LOCAL_STRATEGIES),
                )
            )
        clean = self._call_params(workload, params)
        try:
            tasks = strategies._TASKS.clean(tasks)
            predicted = strategies.predict_seconds(
                workload, clean, tasks, [strategy], calibration(), strategies.usable_cores(), baseline=False
            )
        except workloads.WorkloadError as exc:
            raise ValidationError(str(exc)) from exc
        cap = self._duration_cap()
        if predicted > cap:
            raise ValidationError(
                _(
                    "About %(predicted).0f s of work, more than the %(cap).0f s allowed inside a "
                    "request; use the background pattern.",
                    predicted=predicted,
                    cap=cap,
                )
            )
        busy = self._lab_busy()
        if busy:
            raise LabBusy(_("%(busy)s One lab run at a time: retry when it is over.", busy=busy))
        pool_size = self._db_pool_size(workload, tasks, [strategy], None)
        start = time.perf_counter()
        deadline = time.monotonic() + self._run_seconds_allowed()
        result = strategies.run_strategy(strategy, workload, clean, tasks, pool_size=pool_size, deadline=deadline)
        data = result.as_dict()
        data.update(served_by_pid=os.getpid(), request_seconds=round(time.perf_counter() - start, 6))
        return data


def _user_impact_thread(dbname, uid, experiment_id):
    """The user-impact run, in its own cursor (see ``_start_user_impact``)."""
    try:
        with Registry(dbname).cursor() as cr:
            env = api.Environment(cr, uid, {})
            env["async_lab.experiment"].browse(experiment_id)._run_user_impact()
    except Exception:
        _logger.exception("user impact %s could not run", experiment_id)
