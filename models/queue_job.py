# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models
from odoo.tools import SQL
from odoo.tools.sql import index_exists

from odoo.addons.queue_job.job import CANCELLED, DONE, ENQUEUED, FAILED, PENDING, STARTED, WAIT_DEPENDENCIES

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


class QueueJob(models.Model):
    _inherit = "queue.job"

    async_lab_burst_id = fields.Many2one("async_lab.burst", "Async Lab burst", index="btree_not_null",
                                         ondelete="set null", readonly=True)  # fmt: skip
    async_lab_launch = fields.Integer(
        "Async Lab launch", readonly=True, help="The burst's launch, or the experiment's run, that created the job."
    )
    async_lab_experiment_id = fields.Many2one("async_lab.experiment", "Async Lab experiment",
                                              index="btree_not_null", ondelete="set null", readonly=True)  # fmt: skip
    async_lab_date_received = fields.Datetime(
        "Received by a worker",
        readonly=True,
        help="When the job runner's request to run this job reached an HTTP worker, to the microsecond "
        "(the runner stores its enqueue time truncated to the second).",
    )

    def write(self, vals):
        if not any(vals.get(name) for name in SCRUBBED_FIELDS):
            return super().write(vals)
        lab = self.filtered(lambda job: job.async_lab_burst_id or job.async_lab_experiment_id
                            or (job.model_name or "").startswith("async_lab."))  # fmt: skip
        scrubbed = dict(vals, **{name: scrub_urls(vals[name]) for name in SCRUBBED_FIELDS if vals.get(name)})
        result = super(QueueJob, lab).write(scrubbed) if lab else True
        others = self - lab
        return super(QueueJob, others).write(vals) if others else result

    def init(self):
        res = super().init()
        if not index_exists(self.env.cr, DONE_INDEX):
            self.env.cr.execute(SQL(
                "CREATE INDEX %s ON queue_job (channel, date_done, %s) "
                "INCLUDE (date_created, date_enqueued, date_started, async_lab_date_received) WHERE state = 'done'",
                SQL.identifier(DONE_INDEX),
                SQL(", ").join(SQL("(%s)", SQL(expression)) for expression in DONE_STAGES.values()),
            ))  # fmt: skip
        if not index_exists(self.env.cr, FAILED_INDEX):
            self.env.cr.execute(SQL(
                "CREATE INDEX %s ON queue_job (channel, date_started) WHERE state = 'failed'",
                SQL.identifier(FAILED_INDEX),
            ))  # fmt: skip
        return res
