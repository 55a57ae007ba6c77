# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models


class QueueJob(models.Model):
    _inherit = "queue.job"

    async_lab_burst_id = fields.Many2one("async_lab.burst", "Async Lab burst", index="btree_not_null",
                                         ondelete="set null", readonly=True)  # fmt: skip
    async_lab_launch = fields.Integer("Burst launch", readonly=True)
    async_lab_experiment_id = fields.Many2one("async_lab.experiment", "Async Lab experiment",
                                              index="btree_not_null", ondelete="set null", readonly=True)  # fmt: skip
