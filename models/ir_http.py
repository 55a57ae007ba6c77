# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models
from odoo.http import request

from ..process_tracker import tracker


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _dispatch(cls, endpoint):
        # Memory only: the heartbeat thread writes the counters later, in a
        # transaction of its own.
        tracker.count("requests", request.db)
        tracker.request_started()
        try:
            return super()._dispatch(endpoint)
        finally:
            tracker.request_done()
