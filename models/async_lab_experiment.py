# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging
import os
import time

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import config

from odoo.addons.queue_job.delay import chain, group

from ..lib import strategies, theory, workloads
from ..process_tracker import server_mode
from .async_lab_burst import CHANNEL_CPU, CHANNEL_IO, workload_selection

_logger = logging.getLogger(__name__)

#: The fields of a result that the dashboard's lab panel shows.
RESULT_KEYS = ("strategy", "wall_seconds", "startup_seconds", "speedup", "ideal", "expected", "efficiency", "verdict")

#: An experiment must be predicted to finish within this share of the
#: worker limits (limit_time_real, limit_time_cpu) it runs under.
LIMIT_SHARE = 0.5
#: Cap when the server has no time limits.
DEFAULT_CAP_SECONDS = 120
#: The presets reproduce the tables of the classic "threads vs processes vs
#: asyncio" talk: key -> (name, workload, params, tasks).
PRESETS = {
    "io_sleep": ("I/O-bound: 16 × 200 ms sleep", "io_sleep", {"ms": 200}, 16),
    "io_http": ("I/O-bound: 16 × HTTP call", "io_http", {"ms": 200}, 16),
    "cpu_gil": ("CPU-bound, GIL held: 8 × pure-Python loop", "cpu_python", {"n": 10_000_000}, 8),
    "cpu_nogil": ("CPU-bound, GIL released: 8 × hashlib on 32 MB", "cpu_gil_free", {"mb": 32}, 8),
}
STRATEGY_FIELDS = {
    theory.THREADS: "use_threads",
    theory.PROCESSES: "use_processes",
    theory.ASYNCIO: "use_asyncio",
    theory.QUEUE_JOB: "use_queue_job",
}
LAB_CHANNEL_BY_KIND = {workloads.KIND_IO: CHANNEL_IO}
#: How the result of a failed queue_job task starts (see _job_task).
TASK_ERROR = "error:"
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
    _description = "Concurrency experiment"
    _order = "id desc"

    name = fields.Char(required=True, default=lambda self: _("New experiment"))
    preset = fields.Selection([(key, value[0]) for key, value in PRESETS.items()])
    workload = fields.Selection(workload_selection(), required=True, default="io_sleep")
    ms = fields.Integer("Milliseconds", default=200)
    n = fields.Integer("Iterations", default=10_000_000)
    mb = fields.Integer("MiB", default=32)
    tasks = fields.Integer(default=16, required=True, help="At most %d." % strategies.MAX_TASKS)
    pool_size = fields.Integer(help="Workers of the thread/process pools and the asyncio semaphore. "
                                    "0: one per task (threads, asyncio), one per core (processes).")  # fmt: skip
    use_threads = fields.Boolean("Threads", default=True)
    use_processes = fields.Boolean("Processes", default=True)
    use_asyncio = fields.Boolean("asyncio", default=True)
    use_queue_job = fields.Boolean("queue_job fan-out", default=True)
    state = fields.Selection(
        [("draft", "Draft"), ("queued", "Queued"), ("running", "Running"), ("done", "Done"), ("failed", "Failed")],
        default="draft", readonly=True, copy=False,
    )  # fmt: skip
    error = fields.Text(readonly=True, copy=False)
    environment = fields.Json(readonly=True, copy=False)
    environment_summary = fields.Char(compute="_compute_environment_summary")
    predicted_seconds = fields.Float(compute="_compute_predicted_seconds", digits=(16, 1))
    started_at = fields.Datetime(readonly=True, copy=False)
    finished_at = fields.Datetime(readonly=True, copy=False)
    result_ids = fields.One2many("async_lab.experiment.result", "experiment_id", readonly=True, copy=False)

    _sql_constraints = [
        ("tasks_range", "CHECK(tasks BETWEEN 1 AND %d)" % strategies.MAX_TASKS,
         "An experiment runs between 1 and %d tasks." % strategies.MAX_TASKS),
        ("pool_size_range", "CHECK(pool_size BETWEEN 0 AND %d)" % strategies.MAX_POOL_SIZE,
         "The pool size is between 0 (automatic) and %d." % strategies.MAX_POOL_SIZE),
    ]  # fmt: skip

    @api.onchange("preset")
    def _onchange_preset(self):
        if self.preset:
            name, workload, params, tasks = PRESETS[self.preset]
            self.update(dict(params, name=name, workload=workload, tasks=tasks))

    def _params(self):
        spec = workloads.WORKLOADS[self.workload]
        return {param.name: self[param.name] for param in spec.params if param.name in ("ms", "n", "mb")}

    def _run_params(self):
        """Validated parameters plus the values the server supplies (URL, DSN)."""
        Burst = self.env["async_lab.burst"]
        return dict(Burst._clean_params(self.workload, self._params()), **Burst._workload_settings(self.workload))

    def _strategies(self):
        return [theory.SEQUENTIAL] + [s for s, field in STRATEGY_FIELDS.items() if self[field]]

    def _lab_channel(self):
        return LAB_CHANNEL_BY_KIND.get(workloads.WORKLOADS[self.workload].kind, CHANNEL_CPU)

    def _channel_capacity(self):
        return self.env["async_lab.stats"]._channel_capacity(self._lab_channel())

    @api.depends("workload", "ms", "n", "mb", "tasks", "pool_size", *STRATEGY_FIELDS.values())
    def _compute_predicted_seconds(self):
        for rec in self:
            try:
                rec.predicted_seconds = rec._predict()
            except (workloads.WorkloadError, KeyError):
                rec.predicted_seconds = 0.0

    def _predict(self):
        return strategies.predict_seconds(
            self.workload, self._run_params(), self.tasks, self._strategies(), calibration(), strategies.usable_cores(),
            pool_size=self.pool_size or None, capacity=self._channel_capacity(),
        )  # fmt: skip

    @api.depends("environment")
    def _compute_environment_summary(self):
        for rec in self:
            env = rec.environment or {}
            rec.environment_summary = env and _(
                "%(cores)s cores, Python %(python)s (GIL %(gil)s), %(mode)s mode, "
                "limit_time_cpu %(cpu)ss, limit_time_real %(real)ss, served by PID %(pid)s",
                cores=env.get("cores"), python=env.get("python"), gil="on" if env.get("gil_enabled") else "off",
                mode=env.get("mode"), cpu=env.get("limit_time_cpu"), real=env.get("limit_time_real"),
                pid=env.get("pid"),
            )  # fmt: skip

    @staticmethod
    def _duration_cap():
        limits = [config[key] for key in ("limit_time_real", "limit_time_cpu") if config.get(key, 0) > 0]
        return LIMIT_SHARE * min(limits) if limits else DEFAULT_CAP_SECONDS

    @api.constrains("workload", "ms", "n", "mb", "tasks", "pool_size", *STRATEGY_FIELDS.values())
    def _check_experiment(self):
        for rec in self:
            if workloads.WORKLOADS[rec.workload].kind == workloads.KIND_CONTROL:
                raise ValidationError(_("%s exercises failures, not speed: pick another workload.") % rec.workload)
            predicted, cap = rec._predict(), self._duration_cap()
            if predicted > cap:
                raise ValidationError(_(
                    "This experiment would take about %(predicted).0f s, more than %(cap).0f s (half the "
                    "worker's limit_time_real/limit_time_cpu it runs under). Use fewer tasks or smaller tasks.",
                    predicted=predicted, cap=cap,
                ))  # fmt: skip

    # ------------------------------------------------------------------
    # Running
    # ------------------------------------------------------------------
    def _check_manager(self):
        if not self.env.user.has_group("async_lab.async_lab_group_manager"):
            raise AccessError(_("Only Async Lab managers may run experiments: they create load."))

    def action_run(self):
        """Run the experiment as a queue job in the CPU channel."""
        self._check_manager()
        for rec in self:
            if rec.state in ("queued", "running"):
                raise UserError(_("Experiment %s is already queued or running.") % rec.name)
            rec.result_ids.unlink()
            # The previous run's jobs stay in queue_job, but must not count in this one's figures.
            self.env["queue.job"].flush_model(["async_lab_experiment_id"])
            self.env.cr.execute(
                "UPDATE queue_job SET async_lab_experiment_id = NULL WHERE async_lab_experiment_id = %s", [rec.id]
            )
            self.env["queue.job"].invalidate_model(["async_lab_experiment_id"])
            rec.write({"state": "queued", "error": False, "started_at": False, "finished_at": False})
            rec.with_delay(channel=CHANNEL_CPU, max_retries=1,
                           description=_("Async Lab experiment: %s") % rec.name)._job_run()  # fmt: skip
        return True

    @api.model
    def run_preset(self, key):
        """Create an experiment from preset ``key`` and run it."""
        self._check_manager()
        if key not in PRESETS:
            raise ValidationError(_("Unknown preset %r; choose one of: %s") % (key, ", ".join(PRESETS)))
        name, workload, params, tasks = PRESETS[key]
        experiment = self.create(dict(params, name=name, preset=key, workload=workload, tasks=tasks))
        experiment.action_run()
        return {"experiment_id": experiment.id}

    @api.model
    def get_presets(self):
        return [{"key": key, "name": value[0]} for key, value in PRESETS.items()]

    def _environment(self):
        return dict(
            strategies.environment(), mode=server_mode(), pid=self._current_pid(),
            limit_time_cpu=config.get("limit_time_cpu"), limit_time_real=config.get("limit_time_real"),
            channel=self._lab_channel(), channel_capacity=self._channel_capacity(),
        )  # fmt: skip

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

    @staticmethod
    def _current_pid():
        return os.getpid()

    def _job_run(self):
        """The experiment's job: local strategies here, then the queue_job fan-out."""
        self.ensure_one()
        self.write({"state": "running", "started_at": fields.Datetime.now(), "environment": self._environment()})
        params = self._run_params()
        local = [s for s in self._strategies() if s != theory.QUEUE_JOB]
        try:
            rows = strategies.compare(self.workload, params, self.tasks, local, pool_size=self.pool_size or None,
                                      server_slots=self._server_slots())  # fmt: skip
        except Exception as exc:  # record why on the experiment, keep the job's result readable
            _logger.exception("experiment %s failed", self.id)
            self._finish(error="%s: %s" % (type(exc).__name__, exc))
            return "failed: %s" % exc
        self._store_rows(rows)
        if self.use_queue_job:
            self._fan_out()
        else:
            self._finish()
        return "%d strategies measured" % len(rows)

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
        then = self.delayable(channel=CHANNEL_IO, max_retries=3,
                              description=_("Async Lab experiment %s: fan out the tasks") % self.name,
                              )._job_fan_out_tasks()  # fmt: skip
        self._enqueue_fan_out("_job_calibrate", _("Async Lab experiment %s: no-op %s"), then)

    def _job_fan_out_tasks(self):
        """queue_job strategy, step 2: measure step 1, then the tasks and the collector."""
        self.ensure_one()
        overhead = self._fan_out_figures("_job_calibrate")["wall_seconds"] or 0.0
        collect = self.delayable(channel=CHANNEL_IO, max_retries=3,
                                 description=_("Async Lab experiment %s: collect") % self.name,
                                 )._job_collect(overhead)  # fmt: skip
        self._enqueue_fan_out("_job_task", _("Async Lab experiment %s: task %s"), collect)
        return "dispatch of %d no-op jobs: %.3f s" % (self.tasks, overhead)

    def _enqueue_fan_out(self, method, description, then):
        """``self.tasks`` jobs of ``method(index)`` through the lab channel, then ``then``."""
        tasks = [
            getattr(self.delayable(channel=self._lab_channel(), max_retries=1,
                                   description=description % (self.name, index + 1)), method)(index)
            for index in range(self.tasks)
        ]  # fmt: skip
        chain(group(*tasks), then).delay()
        self.env.cr.execute(
            "UPDATE queue_job SET async_lab_experiment_id = %s WHERE uuid = ANY(%s)",
            [self.id, [d._generated_job.uuid for d in tasks]],
        )

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
                        WHERE async_lab_experiment_id = %s AND method_name = %s) AS jobs""",
            [TASK_ERROR + "%", self.id, method],
        )
        done, total, first, last, pids, starts, ends, workers, errors = self.env.cr.fetchone()
        return {
            "done": done, "total": total, "pids": pids or [], "errors": errors or [],
            "first": float(first) if first else None,
            "wall_seconds": float(last) - float(first) if first and last else None,
            "spans": [(pid, float(start), float(end))
                      for pid, start, end in zip(workers or [], starts or [], ends or [], strict=True)
                      if start is not None and end is not None],
        }  # fmt: skip

    def _job_calibrate(self, index):
        """A no-op task of the queue_job strategy: the same reads as a task, no work."""
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
        try:
            span = workloads.run_task(self.workload, self._run_params())
        except Exception as exc:
            _logger.info("experiment %s: task %d failed", self.id, index, exc_info=True)
            return "%s %s: %s" % (TASK_ERROR, type(exc).__name__, exc)
        return "task %d: pid %s, %.3f s" % (index, span["pid"], span["end"] - span["start"])

    def _job_collect(self, overhead_seconds=0.0):
        """Score the tasks from queue_job's timestamps: first created to last done."""
        self.ensure_one()
        figures = self._fan_out_figures("_job_task")
        baseline = self.result_ids.filtered(lambda r: r.strategy == theory.SEQUENTIAL)
        if not baseline or not figures["wall_seconds"]:
            self._finish(error=_("The queue_job fan-out left nothing to measure."))
            return "nothing to measure"
        outcomes = [{"pid": pid, "thread": 0, "start": start, "end": end, "result": None}
                    for pid, start, end in figures["spans"]]  # fmt: skip
        outcomes += [error[len(TASK_ERROR) :].strip() for error in figures["errors"]]
        outcomes += ["job not done"] * (figures["total"] - len(outcomes))
        result = strategies.RunResult.from_outcomes(
            theory.QUEUE_JOB, self.workload, self._channel_capacity() or 0, outcomes,
            started_at=figures["first"], wall_seconds=figures["wall_seconds"], cpu_seconds=0.0,
        )  # fmt: skip
        wait = workloads.WORKLOADS[self.workload].wait_seconds(self._params())
        row = strategies.score(result, baseline.wall_seconds, strategies.usable_cores(),
                               capacity=self._channel_capacity(), overhead_seconds=overhead_seconds,
                               wait_seconds=wait, server_slots=self._server_slots(queue_job=True))  # fmt: skip
        self._store_rows([row])
        self._finish()
        return "queue_job: %d/%d done by %d processes in %.3f s" % (
            figures["done"], figures["total"], len(figures["pids"]), result.wall_seconds)  # fmt: skip

    def _finish(self, error=None):
        self.write({"state": "failed" if error else "done", "error": error or False,
                    "finished_at": fields.Datetime.now()})  # fmt: skip
        self.env["async_lab.stats"]._notify_dashboard("experiment", {"experiment_id": self.id})

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

    @api.model
    def api_run_inline(self, workload, params, strategy, tasks):
        """POST /async_lab/run: one strategy, measured inside the request."""
        self._check_manager()  # also reachable over RPC, not only through the route
        if strategy not in strategies.LOCAL_STRATEGIES:
            raise ValidationError(_("strategy must be one of %s (queue_job is the background pattern: "
                                    "POST /async_lab/jobs)") % ", ".join(strategies.LOCAL_STRATEGIES))  # fmt: skip
        if workload not in workloads.WORKLOADS:
            raise ValidationError(
                _("Unknown workload %r; choose one of: %s") % (workload, ", ".join(workloads.WORKLOADS))
            )
        Burst = self.env["async_lab.burst"]
        clean = dict(Burst._clean_params(workload, params), **Burst._workload_settings(workload))
        try:
            tasks = strategies._TASKS.clean(tasks)
            predicted = strategies.predict_seconds(workload, clean, tasks, [strategy], calibration(),
                                                   strategies.usable_cores())  # fmt: skip
        except workloads.WorkloadError as exc:
            raise ValidationError(str(exc)) from exc
        cap = self._duration_cap()
        if predicted > cap:
            raise ValidationError(_("About %(predicted).0f s of work, more than the %(cap).0f s allowed inside a "
                                    "request; use the background pattern.", predicted=predicted, cap=cap))  # fmt: skip
        start = time.perf_counter()
        result = strategies.run_strategy(strategy, workload, clean, tasks)
        data = result.as_dict()
        data.update(served_by_pid=self._current_pid(), request_seconds=round(time.perf_counter() - start, 6))
        return data
