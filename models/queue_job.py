# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models
from odoo.tools import SQL
from odoo.tools.sql import index_exists

#: The stats' done-jobs window, answered from the index alone (index-only
#: scan): channel and date_done to find the rows, the other stage
#: timestamps carried along for the percentiles.
DONE_INDEX = "queue_job_async_lab_done_channel_date_done_index"
#: queue_job's autovacuum never deletes failed jobs: find a window's failed
#: jobs without reading all of them through the state index.
FAILED_INDEX = "queue_job_async_lab_failed_channel_date_started_index"


class QueueJob(models.Model):
    _inherit = "queue.job"

    async_lab_burst_id = fields.Many2one("async_lab.burst", "Async Lab burst", index="btree_not_null",
                                         ondelete="set null", readonly=True)  # fmt: skip
    async_lab_launch = fields.Integer("Burst launch", readonly=True)
    async_lab_experiment_id = fields.Many2one("async_lab.experiment", "Async Lab experiment",
                                              index="btree_not_null", ondelete="set null", readonly=True)  # fmt: skip

    def init(self):
        res = super().init()
        if not index_exists(self.env.cr, DONE_INDEX):
            self.env.cr.execute(SQL(
                "CREATE INDEX %s ON queue_job (channel, date_done) "
                "INCLUDE (date_created, date_enqueued, date_started) WHERE state = 'done'",
                SQL.identifier(DONE_INDEX),
            ))  # fmt: skip
        if not index_exists(self.env.cr, FAILED_INDEX):
            self.env.cr.execute(SQL(
                "CREATE INDEX %s ON queue_job (channel, date_started) WHERE state = 'failed'",
                SQL.identifier(FAILED_INDEX),
            ))  # fmt: skip
        return res
