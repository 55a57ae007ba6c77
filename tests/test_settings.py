# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import time
from datetime import timedelta
from pathlib import Path

from odoo.tests import BaseCase
from odoo.tools import mute_logger

from ..lib import processes, settings
from .common import AsyncLabCase, assert_doctests, heartbeat_snapshot, now_minute

BAD_VALUES = ("abc", "0", "-5", "1.5", "")


class TestSettingsLib(BaseCase):
    def test_doctests(self):
        assert_doctests(self, settings)

    def test_readme_lists_every_setting(self):
        readme = (Path(__file__).resolve().parent.parent / "README.rst").read_text()
        for key in settings.SETTINGS:
            self.assertIn("``%s``" % key, readme)


class TestSettings(AsyncLabCase):
    """Every integer ir.config_parameter the addon reads: a bad value gives
    the default (with a warning) and is clamped, never an error or a wipe."""

    def set_param(self, key, value):
        self.env["ir.config_parameter"].sudo().set_param(key, value)

    def test_every_setting_survives_bad_values(self):
        Params = self.env["ir.config_parameter"]
        for key, setting in settings.SETTINGS.items():
            for value in BAD_VALUES:
                self.set_param(key, value)
                with mute_logger("odoo.addons.async_lab.models.ir_config_parameter"):
                    self.assertEqual(Params._async_lab_int(key), setting.default, (key, value))
            self.set_param(key, str(setting.maximum + 1))
            with mute_logger("odoo.addons.async_lab.models.ir_config_parameter"):
                self.assertEqual(Params._async_lab_int(key), setting.maximum)
            self.set_param(key, str(setting.minimum))
            self.assertEqual(Params._async_lab_int(key), setting.minimum)

    def test_bad_value_warns(self):
        self.set_param("async_lab.metric_retention_days", "a week")
        with self.assertLogs("odoo.addons.async_lab.models.ir_config_parameter", "WARNING") as logs:
            self.env["ir.config_parameter"]._async_lab_int("async_lab.metric_retention_days")
        self.assertIn("not an integer", logs.output[0])

    def test_prune_keeps_rows_under_bad_retention(self):
        """0 or -1 days once deleted every metric; "abc" broke the cron."""
        now = now_minute()
        Metric = self.env["async_lab.metric"]
        Metric.create({"channel": "root.async_lab.io", "minute": now - timedelta(days=1), "done": 1})
        for value in ("0", "-1", "abc"):
            self.set_param("async_lab.metric_retention_days", value)
            with mute_logger("odoo.addons.async_lab.models.ir_config_parameter"):
                Metric._cron_prune(now=now)
            self.assertEqual(Metric.search_count([]), 1, value)

    def test_process_prune_keeps_rows_under_bad_retention(self):
        Worker = self.env["async_lab.worker"]
        now = time.time()
        Worker._heartbeat(
            heartbeat_snapshot(self.env, host="far", pid=2, master_pid=1, now=now - processes.GONE_AFTER - 5, limits={})
        )
        Worker._age_other_hosts("here", now)
        for value in ("-5", "zero"):
            self.set_param("async_lab.process_retention_hours", value)
            with mute_logger("odoo.addons.async_lab.models.ir_config_parameter"):
                Worker._prune(now + 3600)
            self.assertEqual(Worker.search_count([("host", "=", "far")]), 1, value)
