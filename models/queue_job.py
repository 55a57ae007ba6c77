# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging

from odoo import _, fields, models
from odoo.tools import SQL
from odoo.tools.sql import index_exists

from odoo.addons.queue_job.job import CANCELLED, DONE, ENQUEUED, FAILED, PENDING, STARTED, WAIT_DEPENDENCIES

from ..lib import why
from ..lib.advisor import full_name
from ..lib.groups import GROUP_QUEUE_JOB_MANAGER
from ..lib.times import to_epoch
from ..lib.tokens import scrub_urls

_logger = logging.getLogger(__name__)

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
#: A job's channel as queue_job's runner reads it (``sub`` is ``root.sub``), in SQL:
#: :func:`..lib.advisor.full_name`.
FULL_CHANNEL = (
    "CASE WHEN channel IS NULL OR channel = 'root' OR left(channel, 5) = 'root.'"
    " THEN coalesce(channel, 'root') ELSE 'root.' || channel END"
)
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
        """The banner of queue_job's form: it must never keep the form from opening.

        A failure is logged, and leaves the banner empty; it is rolled back
        to a savepoint, so that the read goes on.
        """
        for job in self:
            found = {"code": False, "message": False}
            if job.id:
                try:
                    with self.env.cr.savepoint(flush=False):  # no flush: this is a read
                        found = job.async_lab_why()
                except Exception:
                    _logger.exception("async_lab: cannot tell why job %s is not running", job.id)
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
        queue_job managers every job); the facts are then read as superuser,
        and the other jobs they name filtered to the ones the caller may read
        (:meth:`_async_lab_why_readable`).
        """
        self.ensure_one()
        self.check_access_rights("read")
        self.check_access_rule("read")
        job = self.sudo()
        facts = job._async_lab_why_facts()
        found = why.first_reason(facts)
        data = self._async_lab_why_readable(found["data"])
        return {
            "uuid": job.uuid,
            "state": job.state,
            "code": found["code"],
            "message": self._async_lab_why_message(found["code"], data),
            "data": data,
        }

    def _async_lab_why_readable(self, data):
        """``data`` naming only the jobs the caller may read.

        Other jobs' uuids, PIDs and names are business data: the caller sees
        them only if ``queue.job`` gives them to them (its record rules: Async
        Lab users read lab jobs, queue_job managers every job). The jobs
        holding a channel (``running``), the workers busy with a job
        (``busy``) and the dependencies keep the readable ones; the others are
        counted in ``others``. A blocking job that is not readable keeps its
        keys, empty, with ``hidden``.
        """
        lists = {"running": "uuid", "busy": "job", "dependencies": "uuid"}
        named = {item.get(key) for name, key in lists.items() for item in data.get(name) or []}
        blocking = data.get("blocking")
        if blocking:
            named.add(blocking.get("uuid"))
        named.discard(None)
        if self.env.su or self.env.user.has_group(GROUP_QUEUE_JOB_MANAGER):
            readable = named
        else:
            readable = set(self.search([("uuid", "in", list(named))]).mapped("uuid")) if named else set()
        data = dict(data)
        for name, key in lists.items():
            if name in data:
                items = data[name] or []
                shown = [item for item in items if item.get(key) is None or item[key] in readable]
                data[name], data["others"] = shown, len(items) - len(shown)
        if blocking and blocking.get("uuid") not in readable:
            data["blocking"] = dict(dict.fromkeys(blocking), hidden=True)
        return data

    def _async_lab_why_message(self, code, data):
        """The sentence of a "why" code, translated, with the reason's figures."""
        stages = data.get("stages") or {}
        values = {
            **{name: stages.get(name) for name in why.STAGES_NAMES},
            **data,
            # All the jobs that hold the channel, the hidden ones included (counted, never named).
            "count": data.get("running_count")
            or len(data.get("dependencies") or data.get("running") or []) + (data.get("others") or 0),
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
        if code == "pending" and data.get("ahead_capped"):
            templates["pending"] = _(
                "Pending in %(channel)s with more than %(ahead)s jobs before it: the runner sends it when its "
                "turn comes."
            )
        if code == "worker_gone" and data.get("requeued_within") is None:
            # No requeue time while a transaction still holds the job's lock: say so, never "within None s".
            return (
                _(
                    "Started on process %(worker_pid)s, which is gone, but a transaction still holds the job's "
                    "lock: queue_job's runner requeues it once the lock is free, then it is %(then)s."
                )
                % values
            )
        return templates[code] % values

    def _async_lab_why_facts(self):
        """The facts :func:`why.first_reason` needs, as plain values (epoch seconds).

        Only the facts of the job's state are gathered: its channel's queue
        when pending, the HTTP workers when enqueued, the channel's p95 run
        time when started. The runner is alive if it holds queue_job's lock.
        """
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
        facts["runner"] = {"alive": self.env["async_lab.deployment"]._runner_lock_held()}
        if self.state == "pending":
            facts["channel"] = self._async_lab_channel_facts(now)
        if self.state == "enqueued":
            facts["http"] = self._async_lab_http_facts()
        if self.state in ("enqueued", "started"):
            facts["lock_free"] = self._async_lab_lock_free()
        if self.state == "started":
            facts["channel"] = {"p95": self._async_lab_p95()}
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
        """The job's channel: the capacity that binds it, the jobs that hold it, the queue before it.

        Capacities are the job runner's (:meth:`AsyncLabAdvisor._runner_channels`),
        by full channel name; a job's channel is stored as given (``sub`` or
        ``root.sub``), and the runner reads both as ``root.sub``.
        """
        config, _source = self.env["async_lab.advisor"]._runner_channels()
        channel = full_name(self.channel or "root")
        spellings = list({self.channel or "root", channel, channel.removeprefix("root.")})
        self.flush_model()
        # The jobs each channel on its path runs (its own and its sub-channels'), counted in SQL, each
        # job's channel read as the runner reads it.
        parts = channel.split(".")
        path = [".".join(parts[:depth]) for depth in range(len(parts), 0, -1)]
        self.env.cr.execute(
            SQL(
                """SELECT p.name, count(j.channel) FROM unnest(%s::varchar[]) AS p(name)
                     LEFT JOIN (SELECT %s AS channel FROM queue_job WHERE state IN ('enqueued', 'started')) AS j
                       ON j.channel = p.name OR left(j.channel, length(p.name) + 1) = p.name || '.'
                    GROUP BY p.name""",
                path,
                SQL(FULL_CHANNEL),
            )
        )
        counts = dict(self.env.cr.fetchall())
        # The deepest channel on its path that is full is the one that holds it back.
        binding = None
        for name in path:
            capacity = (config.get(name) or {}).get("capacity")
            if not capacity:
                continue  # not configured, or 0: no bound of its own
            if binding is None or counts[name] >= int(capacity):
                binding = {"name": name, "capacity": int(capacity), "running_count": counts[name]}
                if counts[name] >= int(capacity):
                    break
        if binding:
            self.env.cr.execute(
                SQL(
                    """SELECT uuid, worker_pid, date_started, channel, state FROM (
                           SELECT uuid, worker_pid, date_started, %s AS channel, state FROM queue_job
                            WHERE state IN ('enqueued', 'started')) AS j
                        WHERE channel = %s OR left(channel, length(%s) + 1) = %s || '.'
                        ORDER BY date_started NULLS LAST LIMIT %s""",
                    SQL(FULL_CHANNEL),
                    binding["name"],
                    binding["name"],
                    binding["name"],
                    MAX_RUNNING_SHOWN,
                )
            )
            binding["running"] = [
                {"uuid": u, "worker_pid": p, "date_started": to_epoch(d), "channel": c, "state": st}
                for u, p, d, c, st in self.env.cr.fetchall()
            ]
        binding = binding or {"name": channel, "capacity": None, "running": [], "running_count": 0}
        own = config.get(channel) or {}
        blocking = None
        if own.get("sequential"):
            self.env.cr.execute(
                "SELECT uuid, exc_name FROM queue_job WHERE channel = ANY(%s) AND state = 'failed' ORDER BY id LIMIT 1",
                [spellings],
            )
            row = self.env.cr.fetchone()
            blocking = {"uuid": row[0], "exception": row[1]} if row else None
        # Counted up to one past the bound: a huge queue is "more than MAX_AHEAD".
        self.env.cr.execute(
            """SELECT count(*) FROM (
                   SELECT 1 FROM queue_job WHERE state = 'pending' AND channel = ANY(%s)
                      AND (priority < %s OR (priority = %s AND id < %s)) LIMIT %s) AS ahead""",
            [spellings, self.priority, self.priority, self.id, why.MAX_AHEAD + 1],
        )
        return {
            **binding,
            "sequential": bool(own.get("sequential")),
            "blocking": blocking,
            "ahead": self.env.cr.fetchone()[0],
        }

    def _async_lab_p95(self):
        """The p95 run time of the job's channel over the last WHY_P95_WINDOW minutes (the stats'), or None."""
        stats = self.env["async_lab.stats"].get_stats(WHY_P95_WINDOW)
        found = next((c for c in stats["channels"] if c["name"] == self.channel), None)
        return found["latency"]["started_done"]["p95"] if found else None

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
