# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models

from ..lib.groups import GROUP_USER
from .async_lab_stats import DASHBOARD_CHANNEL


class IrWebsocket(models.AbstractModel):
    _inherit = "ir.websocket"

    def _build_bus_channel_list(self, channels):
        """Trade the dashboard's channel name for its group-scoped channel, for Async Lab users only.

        The client asks for the plain string; notifications go to the
        ``(group, name)`` channel (see ``async_lab.stats._dashboard_bus_channel``),
        which nobody can ask for by name.
        """
        asked = DASHBOARD_CHANNEL in channels
        channels = [channel for channel in channels if channel != DASHBOARD_CHANNEL]
        if asked and self.env.user.has_group(GROUP_USER):
            channels.append(self.env["async_lab.stats"]._dashboard_bus_channel())
        return super()._build_bus_channel_list(channels)
