# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The addon's settings: the ``ir.config_parameter`` keys it reads, with their
defaults and bounds.

A value stored by hand may be anything. :meth:`Setting.parse` never fails: a
value that is not an integer, or is 0 or less, gives the default; any other
value is clamped to the bounds. It also says what was wrong, for a warning:

>>> SETTINGS["async_lab.max_active_jobs"].parse("12")
(12, None)
>>> SETTINGS["async_lab.max_active_jobs"].parse("lots")
(5000, "'lots' is not an integer")
>>> SETTINGS["async_lab.burst_retention_days"].parse("-3")
(30, "'-3' is not positive")
>>> SETTINGS["async_lab.burst_retention_days"].parse("99999")
(3650, "'99999' is above 3650")
>>> SETTINGS["async_lab.burst_retention_days"].parse(None)
(30, None)
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """An integer setting, with its default and bounds (inclusive)."""

    key: str
    default: int
    minimum: int
    maximum: int
    description: str

    def parse(self, raw, default=None):
        """Return ``(value, problem)``: ``raw`` as a bounded int, and what was
        wrong with it (None if nothing). ``default`` replaces the setting's
        own default (a default computed from the server's configuration)."""
        default = self.default if default is None else default
        default = min(max(default, self.minimum), self.maximum)
        if raw is None or raw is False or str(raw).strip() == "":
            return default, None
        try:
            value = int(str(raw).strip())
        except ValueError:
            return default, f"{raw!r} is not an integer"
        if value <= 0:
            return default, f"{raw!r} is not positive"
        if value < self.minimum:
            return self.minimum, f"{raw!r} is below {self.minimum}"
        if value > self.maximum:
            return self.maximum, f"{raw!r} is above {self.maximum}"
        return value, None


#: Every setting, by key. README's configuration section lists them.
SETTINGS = {
    setting.key: setting
    for setting in (
        Setting(
            "async_lab.burst_retention_days",
            30,
            1,
            3650,
            "days a finished burst (and its jobs, failed ones included) is kept",
        ),
        Setting("async_lab.metric_retention_days", 7, 1, 3650, "days the per-minute job metrics are kept"),
        Setting("async_lab.process_retention_hours", 24, 1, 8760, "hours a gone process stays in the registry"),
        Setting(
            "async_lab.max_active_jobs",
            5000,
            1,
            1_000_000,
            "lab jobs waiting or running at once, all bursts and experiments together; "
            "a launch above it is refused (HTTP 429)",
        ),
        Setting(
            "async_lab.max_db_connections",
            16,
            1,
            1000,
            "PostgreSQL connections that io_db tasks hold at once, server-wide (default: a quarter of db_maxconn)",
        ),
        Setting(
            "async_lab.run_timeout_seconds",
            300,
            5,
            86400,
            "longest lab run in threaded mode (prefork: 80 % of limit_time_real)",
        ),
        Setting(
            "async_lab.load_calls_per_user",
            2,
            1,
            64,
            "direct calls of /async_lab/io and /async_lab/cpu running at once, per user",
        ),
        Setting(
            "async_lab.control_max_extra_http_workers",
            2,
            1,
            64,
            "HTTP workers a node may run above its configured workers, added from the dashboard "
            "or POST /async_lab/control",
        ),
        Setting(
            "async_lab.stuck_timeout_minutes",
            15,
            1,
            10080,
            "minutes after which the reconcile cron ends a lab job or experiment that can no longer finish",
        ),
    )
}
