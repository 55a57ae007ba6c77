# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models

from ..lib import processes


class AsyncLabRespawn(models.Model):
    """A process that vanished and was replaced under the same master."""

    _name = "async_lab.respawn"
    _description = "Process respawn"
    _order = "respawned_at desc, id desc"

    name = fields.Char(compute="_compute_name")
    host = fields.Char(required=True, readonly=True, index=True)
    master_pid = fields.Integer("Master PID", readonly=True, group_operator=False)
    role = fields.Selection(processes.ROLES, readonly=True)
    old_pid = fields.Integer("Old PID", readonly=True, group_operator=False)
    new_pid = fields.Integer("New PID", readonly=True, group_operator=False)
    old_worker_id = fields.Many2one("async_lab.worker", "Vanished process", readonly=True, ondelete="set null")
    new_worker_id = fields.Many2one("async_lab.worker", "Replacement", readonly=True, ondelete="set null")
    gone_at = fields.Datetime(readonly=True, help="The last moment the vanished process was seen alive.")
    respawned_at = fields.Datetime(readonly=True, index=True, help="Start of the replacement.")
    reason = fields.Selection(processes.EXIT_REASONS, readonly=True, required=True)

    @api.depends("role", "old_pid", "new_pid")
    def _compute_name(self):
        roles = dict(processes.ROLES)
        for rec in self:
            rec.name = "%s %s → %s" % (roles.get(rec.role, rec.role), rec.old_pid, rec.new_pid)
