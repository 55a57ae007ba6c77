# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models

from ..process_tracker import tracker


class IrCron(models.Model):
    _inherit = "ir.cron"

    def _callback(self, cron_name, server_action_id, job_id):
        tracker.count("crons", self.env.cr.dbname)
        return super()._callback(cron_name, server_action_id, job_id)
