# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging
from datetime import datetime, timedelta, timezone

from odoo import _, api, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

from odoo.addons.queue_job.jobrunner.channels import ChannelManager
from odoo.addons.queue_job.jobrunner.runner import _channels

from .async_lab_metric import minute_floor

_logger = logging.getLogger(__name__)

#: Longest statistics window, in minutes.
MAX_WINDOW = 24 * 60
DEFAULT_WINDOW = 60
ACTIVE_STATES = ("wait_dependencies", "pending", "enqueued", "started")
STAGES = ("created_enqueued", "enqueued_started", "started_done")
DASHBOARD_CHANNEL = "async_lab.dashboard"


def utcnow():
    """Naive UTC now *with* microseconds (fields.Datetime.now() drops them,
    which would leave out the jobs done in the current second)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def iso(dt):
    return dt.isoformat() + "Z" if dt else None


def seconds(value):
    return round(value, 4) if value is not None else None


class AsyncLabStats(models.AbstractModel):
    """The single source of job statistics.

    The dashboard, the JSON routes and any exporter read :meth:`get_stats`;
    none recomputes figures its own way. Everything is an SQL aggregate on
    indexes of queue_job: its state index for the active jobs, and the two
    partial indexes async_lab adds (done jobs by channel and date_done,
    covering the stage timestamps; failed jobs by channel and date_started).
    """

    _name = "async_lab.stats"
    _description = "Async Lab statistics"

    @api.model
    def _channel_config(self):
        """The job runner's channel configuration (the only source of capacity)."""
        text = _channels()
        try:
            return text, {c["name"]: c for c in ChannelManager.parse_simple_config(text)}
        except Exception:  # a broken config must not break the stats
            _logger.warning("cannot parse queue_job channels %r", text, exc_info=True)
            return text, {}

    @api.model
    def _known_channels(self):
        """Configured channels, channel records, and channels with jobs to run."""
        names = set(self._channel_config()[1])
        names.update(self.env["queue.job.channel"].sudo().search([]).mapped("complete_name"))
        self.env.cr.execute("SELECT DISTINCT channel FROM queue_job WHERE state IN %s", [ACTIVE_STATES])
        names.update(row[0] for row in self.env.cr.fetchall() if row[0])
        return sorted(names)

    @api.model
    def get_stats(self, window=DEFAULT_WINDOW, now=None):
        """Job statistics over the last ``window`` minutes, as a plain dict."""
        if not self.env.su and not self.env.user.has_group("async_lab.async_lab_group_user"):
            # Raw SQL below reads queue_job past its access rules: check here,
            # since this public method is also reachable over RPC.
            raise AccessError(_("Job statistics need the Async Lab / User group."))
        window = max(1, min(int(window), MAX_WINDOW))
        now = now or utcnow()
        since = now - timedelta(minutes=window)
        last_minute = now - timedelta(minutes=1)
        config_text, config = self._channel_config()
        names = self._known_channels()
        cr = self.env.cr
        channels = {
            name: {
                "name": name,
                "capacity": config.get(name, {}).get("capacity"),
                "sequential": bool(config.get(name, {}).get("sequential")),
                "configured": name in config,
                **{state: 0 for state in ACTIVE_STATES},
                "done": 0, "failed": 0, "done_last_minute": 0, "failed_last_minute": 0,
                "throughput_per_minute": 0.0,
                "latency": {stage: {"p50": None, "p95": None} for stage in STAGES},
            }
            for name in names
        }  # fmt: skip
        last_dispatch = []

        # Queue depth (state index: active jobs are few).
        cr.execute(
            "SELECT channel, state, count(*), max(date_enqueued) FROM queue_job WHERE state IN %s GROUP BY 1, 2",
            [ACTIVE_STATES],
        )
        for channel, state, count, enqueued in cr.fetchall():
            if channel in channels:
                channels[channel][state] = count
            last_dispatch.append(enqueued)

        # Done jobs of the window (index-only scan of the done-jobs index).
        cr.execute(SQL(
            """
            SELECT channel, count(*), count(*) FILTER (WHERE date_done >= %(last_minute)s),
                   percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
                       ORDER BY extract(epoch FROM date_enqueued - date_created)),
                   percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
                       ORDER BY extract(epoch FROM date_started - date_enqueued)),
                   percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
                       ORDER BY extract(epoch FROM date_done - date_started)),
                   max(date_enqueued)
              FROM queue_job
             WHERE state = 'done' AND channel = ANY(%(channels)s)
               AND date_done >= %(since)s AND date_done <= %(now)s
             GROUP BY channel
            """,
            channels=names, since=since, now=now, last_minute=last_minute,
        ))  # fmt: skip
        for channel, done, done_minute, enq, start, run, enqueued in cr.fetchall():
            row = channels[channel]
            row.update(done=done, done_last_minute=done_minute, throughput_per_minute=round(done / window, 2))
            for stage, values in zip(STAGES, (enq, start, run)):
                row["latency"][stage] = {"p50": seconds(values[0]), "p95": seconds(values[1])}
            last_dispatch.append(enqueued)

        # Failed jobs (failed-jobs index), by the time they started.
        cr.execute(SQL(
            """
            SELECT channel, count(*), count(*) FILTER (WHERE date_started >= %(last_minute)s)
              FROM queue_job
             WHERE state = 'failed' AND channel = ANY(%(channels)s) AND date_started >= %(since)s
             GROUP BY channel
            """,
            channels=names, since=since, last_minute=last_minute,
        ))  # fmt: skip
        for channel, failed, failed_minute in cr.fetchall():
            channels[channel].update(failed=failed, failed_last_minute=failed_minute)

        rows = list(channels.values())
        return {
            "generated_at": iso(now),
            "window_minutes": window,
            "channels": rows,
            "totals": {
                "done_window": sum(r["done"] for r in rows),
                "failed_window": sum(r["failed"] for r in rows),
                "done_last_minute": sum(r["done_last_minute"] for r in rows),
                "failed_last_minute": sum(r["failed_last_minute"] for r in rows),
                **{state: sum(r[state] for r in rows) for state in ACTIVE_STATES},
            },
            "series": self._series(names, since, now),
            "runner": self._runner_status(config_text, max(filter(None, last_dispatch), default=None)),
        }

    @api.model
    def _series(self, names, since, now):
        """Per-minute done/failed per channel: stored buckets, then live minutes."""
        Metric = self.env["async_lab.metric"]
        cr = self.env.cr
        start = minute_floor(since)
        cr.execute(
            "SELECT channel, minute, done, failed FROM async_lab_metric WHERE minute >= %s AND minute <= %s",
            [start, now],
        )
        buckets = {(channel, minute): (done, failed) for channel, minute, done, failed in cr.fetchall()}
        rolled = max((minute for _channel, minute in buckets), default=None)
        live_from = rolled + timedelta(minutes=1) if rolled else start
        for bucket in Metric._compute_buckets(names, live_from, now + timedelta(minutes=1)):
            buckets[(bucket["channel"], bucket["minute"])] = (bucket["done"], bucket["failed"])
        minutes = []
        minute = start
        while minute <= now:
            minutes.append(minute)
            minute += timedelta(minutes=1)
        series = {
            name: {
                "done": [buckets.get((name, m), (0, 0))[0] for m in minutes],
                "failed": [buckets.get((name, m), (0, 0))[1] for m in minutes],
            }
            for name in names
            if any((name, m) in buckets for m in minutes)
        }
        return {"minutes": [iso(m) for m in minutes], "channels": series}

    @api.model
    def _runner_status(self, config_text, last_dispatch):
        # A runner process (prefork), or a threaded server with a runner thread.
        self.env.cr.execute(
            """SELECT pid, host, extract(epoch FROM last_seen) FROM async_lab_worker
                WHERE state = 'alive' AND (role = 'jobrunner'
                      OR (role = 'threaded' AND threads @> '[{"role": "jobrunner"}]'::jsonb))
                ORDER BY last_seen DESC"""
        )
        runners = self.env.cr.fetchall()
        return {
            "alive": bool(runners),
            "pid": runners[0][0] if runners else None,
            "host": runners[0][1] if runners else None,
            "pids": [r[0] for r in runners],
            "last_dispatched": iso(last_dispatch),
            "channels_config": config_text,
        }

    @api.model
    def _notify_dashboard(self, kind, payload=None):
        """Tell open dashboards that fresh figures exist (bus, after commit)."""
        self.env["bus.bus"]._sendone(DASHBOARD_CHANNEL, "async_lab.refresh", dict(payload or {}, kind=kind))
