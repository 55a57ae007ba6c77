# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import _, fields, models
from odoo.tools import SQL
from odoo.tools.sql import index_exists

from odoo.addons.queue_job.job import CANCELLED, DONE, ENQUEUED, FAILED, PENDING, STARTED, WAIT_DEPENDENCIES

from ..lib import why
from ..lib.times import to_epoch
from ..lib.tokens import scrub_urls

#: queue_job's states of a job still to run or running.
ACTIVE_STATES = (WAIT_DEPENDENCIES, PENDING, ENQUEUED, STARTED)
#: States of a lab job that Cancel, Reset and the reconcile end. A started
#: job runs in a worker that nothing stops: it ends on its own (a task is
#: bounded), or queue_job requeues it if it is found dead.
CANCELLABLE_STATES = (WAIT_DEPENDENCIES, PENDING, ENQUEUED)
#: Every state, the active ones first.
JOB_STATES = ACTIVE_STATES + (DONE, FAILED, CANCELLED)

#: The stats' done-jobs window, answered from the index alone (index-only
#: scan): channel and date_done to find the rows, then the duration of each
#: stage, so that the scan reads them instead of computing them (PostgreSQL
#: matches the statement's expressions with the index's once parsed:
#: :meth:`AsyncLabStats._stats_query` takes them from here). The stage
#: timestamps are carried along: PostgreSQL only scans an index alone if it
#: holds the columns of those expressions too. ``init`` creates it by name:
#: a new definition needs a new name (and a migration dropping the old one).
DONE_INDEX = "queue_job_async_lab_done_stages_v2_index"
#: The instant a job was enqueued, as well as it is known. queue_job's runner
#: writes ``date_enqueued`` truncated to the second (``date_trunc('seconds',
#: now())``), so that ``date_enqueued - date_created`` can be below zero and
#: ``date_started - date_enqueued`` up to 1 s too long. async_lab records
#: ``async_lab_date_received`` itself, to the microsecond: the instant the
#: runner's ``/queue_job/runjob`` request reached an HTTP worker
#: (controllers/runjob.py). A job without it (run before 17.0.1.3.0, or not
#: through that route) falls back to ``date_enqueued``; either is kept
#: between ``date_created`` and ``date_started``, so that no stage is below
#: zero. NULL when neither exists (a job run by hand).
ENQUEUED_AT = (
    "CASE WHEN coalesce(async_lab_date_received, date_enqueued) IS NOT NULL"
    " THEN greatest(least(coalesce(async_lab_date_received, date_enqueued), date_started), date_created) END"
)
#: Seconds of each stage of a done job, as float8 (fast to sort).
DONE_STAGES = {
    "created_enqueued": f"date_part('epoch', {ENQUEUED_AT} - date_created)",
    "enqueued_started": f"date_part('epoch', date_started - {ENQUEUED_AT})",
    "started_done": "date_part('epoch', date_done - date_started)",
}
#: Resolution, in seconds, of the stages :data:`DONE_STAGES` measures: the
#: timestamps' (microseconds), but a second for the two stages around the
#: enqueue instant when it is queue_job's own ``date_enqueued``
#: (:data:`COARSE_RESOLUTION`).
FINE_RESOLUTION = 1e-06
COARSE_RESOLUTION = 1.0
#: queue_job's autovacuum never deletes failed jobs: find a window's failed
#: jobs without reading all of them through the state index.
FAILED_INDEX = "queue_job_async_lab_failed_channel_date_started_index"
#: Texts of a job that may quote a URL (requests' errors do), hence a token
#: in its query string: stored without query strings for the lab's jobs,
#: which every Async Lab user reads.
SCRUBBED_FIELDS = ("exc_message", "exc_info", "result")


#: Jobs that hold a channel's capacity, read at most (a healthy server has a
#: few per channel).
MAX_RUNNING_SHOWN = 50
#: Window of the channel's p95 run time, in minutes.
WHY_P95_WINDOW = 60


class QueueJob(models.Model):
    _inherit = "queue.job"

    async_lab_burst_id = fields.Many2one(
        "async_lab.burst", "Async Lab burst", index="btree_not_null", ondelete="set null", readonly=True
    )
    async_lab_launch = fields.Integer(
        "Async Lab launch",
        readonly=True,
        group_operator=False,
        help="The burst's launch, or the experiment's run, that created the job.",
    )
    # queue_job's own field: an identifier, which a group row must not add up.
    worker_pid = fields.Integer(group_operator=False)
    async_lab_experiment_id = fields.Many2one(
        "async_lab.experiment", "Async Lab experiment", index="btree_not_null", ondelete="set null", readonly=True
    )
    async_lab_date_received = fields.Datetime(
        "Received by a worker",
        readonly=True,
        help="When the job runner's request to run this job reached an HTTP worker, to the microsecond "
        "(the runner stores its enqueue time truncated to the second).",
    )
    async_lab_date_failed = fields.Datetime(
        "Failed at",
        readonly=True,
        help="When a burst's job was stored as failed (queue_job keeps no date for a failure): the end of "
        "the time it held its worker.",
    )

    async_lab_why_code = fields.Char("Why (code)", compute="_compute_async_lab_why")
    async_lab_why_message = fields.Char(
        "Why?", compute="_compute_async_lab_why", help="The first reason that holds this job back (Async Lab)."
    )

    def _compute_async_lab_why(self):
        for job in self:
            found = job.async_lab_why() if job.id else {"code": False, "message": False}
            job.async_lab_why_code, job.async_lab_why_message = found["code"], found["message"]

    def write(self, vals):
        if not any(vals.get(name) for name in SCRUBBED_FIELDS):
            return super().write(vals)
        lab = self.filtered(
            lambda job: (
                job.async_lab_burst_id or job.async_lab_experiment_id or (job.model_name or "").startswith("async_lab.")
            )
        )
        scrubbed = dict(vals, **{name: scrub_urls(vals[name]) for name in SCRUBBED_FIELDS if vals.get(name)})
        result = super(QueueJob, lab).write(scrubbed) if lab else True
        others = self - lab
        return super(QueueJob, others).write(vals) if others else result

    def init(self):
        res = super().init()
        if not index_exists(self.env.cr, DONE_INDEX):
            self.env.cr.execute(
                SQL(
                    "CREATE INDEX %s ON queue_job (channel, date_done, %s) "
                    "INCLUDE (date_created, date_enqueued, date_started, async_lab_date_received) WHERE state = 'done'",
                    SQL.identifier(DONE_INDEX),
                    SQL(", ").join(SQL("(%s)", SQL(expression)) for expression in DONE_STAGES.values()),
                )
            )
        if not index_exists(self.env.cr, FAILED_INDEX):
            self.env.cr.execute(
                SQL(
                    "CREATE INDEX %s ON queue_job (channel, date_started) WHERE state = 'failed'",
                    SQL.identifier(FAILED_INDEX),
                )
            )
        return res

    # ------------------------------------------------------------------
    # Why isn't this job running?
    # ------------------------------------------------------------------
    def async_lab_why(self):
        """``{"uuid", "state", "code", "message", "data"}``: the first reason that holds the job back.

        For anyone who may read the job (Async Lab users read lab jobs,
        queue_job managers every job); the facts are then read as superuser.
        """
        self.ensure_one()
        self.check_access_rights("read")
        self.check_access_rule("read")
        job = self.sudo()
        facts = job._async_lab_why_facts()
        found = why.first_reason(facts)
        return {
            "uuid": job.uuid,
            "state": job.state,
            "code": found["code"],
            "message": self._async_lab_why_message(found["code"], found["data"]),
            "data": found["data"],
        }

    def _async_lab_why_message(self, code, data):
        """The sentence of a "why" code, translated, with the reason's figures."""
        stages = data.get("stages") or {}
        values = {
            **{name: stages.get(name) for name in why.STAGES_NAMES},
            **data,
            "count": len(data.get("dependencies") or data.get("running") or []),
            "last_line": data.get("last_line") or data.get("exception"),
        }
        templates = {
            "done": _(
                "Done: it waited %(created_enqueued)s s to be enqueued, %(enqueued_started)s s for a "
                "worker, and ran %(started_done)s s."
            ),
            "failed": _("Failed on try %(retry)s: %(last_line)s"),
            "cancelled": _("Cancelled: it will not run."),
            "scheduled": _("Scheduled for later: it may run in %(in_seconds)s s (eta)."),
            "waiting_dependencies": _("Waiting for %(count)s job(s) it depends on to be done."),
            "runner_not_alive": _(
                "No job runner serves this database, so nothing enqueues it: check that "
                "queue_job is in server_wide_modules, and restart Odoo."
            ),
            "sequential_blocked": _(
                "Channel %(channel)s is sequential and holds a failed job: it runs nothing "
                "until that job is requeued or cancelled."
            ),
            "channel_full": _("Channel %(channel)s is full: %(count)s of %(capacity)s jobs run."),
            "pending": _(
                "Pending in %(channel)s with %(ahead)s job(s) before it: the runner sends it when its turn comes."
            ),
            "no_free_worker": _(
                "Enqueued, but all %(workers)s HTTP workers are busy (%(busy_with_jobs)s with "
                "jobs): it starts when one is free."
            ),
            "enqueued": _("Enqueued %(enqueued_seconds)s s ago: the runner has handed it to a worker."),
            "worker_gone": _(
                "Started on process %(worker_pid)s, which is gone: queue_job's runner requeues it "
                "within %(requeued_within)s s, then it is %(then)s."
            ),
            "running_long": _(
                "Running for %(running_seconds)s s on process %(worker_pid)s, longer than the "
                "channel's p95 (%(p95)s s): still running."
            ),
            "running": _("Running for %(running_seconds)s s on process %(worker_pid)s."),
        }
        return templates[code] % values

    def _async_lab_why_facts(self):
        """The facts :func:`why.first_reason` needs, as plain values (epoch seconds)."""
        Stats = self.env["async_lab.stats"]
        now = to_epoch(fields.Datetime.now())
        epoch = to_epoch
        job = {
            "state": self.state,
            "channel": self.channel,
            "eta": epoch(self.eta),
            "retry": self.retry,
            "max_retries": self.max_retries,
            "worker_pid": self.worker_pid,
            "exc_name": self.exc_name,
            "exc_message": self.exc_message,
            "exc_info": self.exc_info,
            "retry_pattern": self.job_function_id.retry_pattern or None,
            **{name: epoch(self[name]) for name in ("date_created", "date_enqueued", "date_started", "date_done")},
        }
        if self.async_lab_date_received and self.date_started:
            job["date_enqueued"] = epoch(min(self.async_lab_date_received, self.date_started))
        facts = {"job": job, "now": now, "dependencies": [], "lock_free": False, "worker": None}
        if self.state in ("done", "failed", "cancelled"):
            return facts
        if self.state == "wait_dependencies":
            depends_on = (self.dependencies or {}).get("depends_on") or []
            others = self.search([("uuid", "in", depends_on)])
            facts["dependencies"] = [{"uuid": o.uuid, "state": o.state, "name": o.name} for o in others]
            return facts
        facts["runner"] = {"alive": self.env["async_lab.advisor"]._runner_alive(Stats.get_stats(1))}
        facts["channel"] = self._async_lab_channel_facts(now)
        facts["http"] = self._async_lab_http_facts()
        if self.state in ("enqueued", "started"):
            facts["lock_free"] = self._async_lab_lock_free()
        if self.state == "started" and self.worker_pid:
            self.env.cr.execute(
                """SELECT state, last_seen FROM async_lab_worker WHERE pid = %s
                    ORDER BY state = 'alive' DESC, last_seen DESC LIMIT 1""",
                [self.worker_pid],
            )
            row = self.env.cr.fetchone()
            facts["worker"] = {"state": row[0], "last_seen": epoch(row[1])} if row else None
        return facts

    def _async_lab_channel_facts(self, now):
        """The job's channel: the capacity that binds it, the jobs that hold it, the queue before it."""
        Stats = self.env["async_lab.stats"]
        _text, config = Stats._channel_config()
        self.flush_model()
        self.env.cr.execute(
            """SELECT uuid, worker_pid, date_started, channel, state FROM queue_job
                WHERE state IN ('enqueued', 'started') ORDER BY date_started NULLS LAST LIMIT %s""",
            [MAX_RUNNING_SHOWN * 10],
        )
        active = [
            {"uuid": u, "worker_pid": p, "date_started": to_epoch(d), "channel": c, "state": st}
            for u, p, d, c, st in self.env.cr.fetchall()
        ]
        # The deepest channel on its path that is full is the one that holds it back.
        parts = (self.channel or "root").split(".")
        binding = None
        for depth in range(len(parts), 0, -1):
            name = ".".join(parts[:depth])
            capacity = (config.get(name) or {}).get("capacity")
            if not capacity:
                continue
            running = [j for j in active if j["channel"] == name or j["channel"].startswith(name + ".")]
            if binding is None or len(running) >= int(capacity):
                binding = {"name": name, "capacity": int(capacity), "running": running[:MAX_RUNNING_SHOWN]}
                if len(running) >= int(capacity):
                    break
        binding = binding or {"name": self.channel, "capacity": None, "running": []}
        own = config.get(self.channel) or {}
        blocking = None
        if own.get("sequential"):
            self.env.cr.execute(
                "SELECT uuid, exc_name FROM queue_job WHERE channel = %s AND state = 'failed' ORDER BY id LIMIT 1",
                [self.channel],
            )
            row = self.env.cr.fetchone()
            blocking = {"uuid": row[0], "exception": row[1]} if row else None
        self.env.cr.execute(
            """SELECT count(*) FROM queue_job WHERE state = 'pending' AND channel = %s
                  AND (priority < %s OR (priority = %s AND id < %s))""",
            [self.channel, self.priority, self.priority, self.id],
        )
        ahead = self.env.cr.fetchone()[0]
        stats = next((c for c in Stats.get_stats(WHY_P95_WINDOW)["channels"] if c["name"] == self.channel), None)
        return {
            **binding,
            "sequential": bool(own.get("sequential")),
            "blocking": blocking,
            "ahead": ahead,
            "p95": stats["latency"]["started_done"]["p95"] if stats else None,
        }

    def _async_lab_http_facts(self):
        """The alive HTTP workers, and what the busy ones do."""
        self.env["async_lab.worker"].flush_model()
        self.env.cr.execute(
            """SELECT w.pid, w.busy_since, j.uuid FROM async_lab_worker w
                 LEFT JOIN queue_job j ON j.state = 'started' AND j.worker_pid = w.pid
                WHERE w.state = 'alive' AND w.role = 'http'"""
        )
        rows = self.env.cr.fetchall()
        busy = [{"pid": pid, "busy_since": to_epoch(since), "job": uuid} for pid, since, uuid in rows if since]
        return {"workers": len({pid for pid, _since, _uuid in rows}), "busy": busy}

    def _async_lab_lock_free(self):
        """No live transaction holds the job's queue_job_lock row (queue_job deems it dead).

        Tried with SKIP LOCKED in a savepoint that is rolled back, so the lock
        is not kept.
        """
        self.env.cr.execute("SAVEPOINT async_lab_why")
        try:
            self.env.cr.execute(
                """SELECT NOT EXISTS (SELECT 1 FROM queue_job_lock WHERE queue_job_id = %s)
                          OR EXISTS (SELECT 1 FROM queue_job_lock WHERE queue_job_id = %s FOR UPDATE SKIP LOCKED)""",
                [self.id, self.id],
            )
            return self.env.cr.fetchone()[0]
        finally:
            self.env.cr.execute("ROLLBACK TO SAVEPOINT async_lab_why")
            self.env.cr.execute("RELEASE SAVEPOINT async_lab_why")
