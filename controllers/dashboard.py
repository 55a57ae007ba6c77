# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The dashboard's data for clients other than the web client (scripts, load tests), as JSON-RPC.

The web client calls ``async_lab.dashboard.get_data`` through its orm
service; this route returns the same dict, a contract that scripts rely on.
"""

from odoo import _, http
from odoo.exceptions import AccessError
from odoo.http import request

from ..models.async_lab_dashboard import DEFAULT_LANE_MINUTES, GROUP_USER, MAX_LANE_MINUTES, bounded
from ..models.async_lab_stats import DEFAULT_WINDOW, MAX_WINDOW


class AsyncLabDashboardController(http.Controller):
    @http.route("/async_lab/dashboard/data", type="json", auth="user")
    def dashboard_data(self, window=DEFAULT_WINDOW, lane_minutes=DEFAULT_LANE_MINUTES):
        if not request.env.user.has_group(GROUP_USER):
            raise AccessError(_("The Async Lab dashboard needs the Async Lab / User group."))
        return request.env["async_lab.dashboard"].get_data(
            window=bounded("window", window, 1, MAX_WINDOW),
            lane_minutes=bounded("lane_minutes", lane_minutes, 1, MAX_LANE_MINUTES),
        )
