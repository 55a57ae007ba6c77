# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging

from odoo import api, models

from ..lib.settings import SETTINGS

_logger = logging.getLogger(__name__)

#: (database, key, raw value) already warned about: a bad value read every
#: minute by a cron is logged once, not every minute.
_warned = set()


class IrConfigParameter(models.Model):
    _inherit = "ir.config_parameter"

    @api.model
    def _async_lab_int(self, key, default=None):
        """The integer setting ``key`` (see lib/settings.py), never invalid.

        A value that is not an integer, or is not positive, gives the default
        (``default`` if given, else the setting's) and a warning; any other
        value is clamped to the setting's bounds.
        """
        raw = self.sudo().get_param(key)
        value, problem = SETTINGS[key].parse(raw, default)
        if problem and (self.env.cr.dbname, key, raw) not in _warned:
            _warned.add((self.env.cr.dbname, key, raw))
            _logger.warning("ir.config_parameter %s: %s; using %s", key, problem, value)
        return value
