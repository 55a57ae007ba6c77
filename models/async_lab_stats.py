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
    def _channels_and_depth(self, config):
        """The known channels, and the queue depth, in one statement.

        The channels are the configured ones (``config``), the channel
        records and the channels with jobs to run. The depth rows are
        ``(channel, state, count, max(date_enqueued))`` of the active jobs
        (queue_job's state index: active jobs are few).
        """
        self.env["queue.job"].flush_model()
        self.env["queue.job.channel"].flush_model(["complete_name"])
        self.env.cr.execute(SQL(
            """
            SELECT channel, state, count(*), max(date_enqueued) FROM queue_job WHERE state IN %s GROUP BY 1, 2
             UNION ALL
            SELECT complete_name, NULL, 0, NULL FROM queue_job_channel
            """,
            ACTIVE_STATES,
        ))  # fmt: skip
        rows = self.env.cr.fetchall()
        names = sorted(set(config) | {row[0] for row in rows if row[0]})
        return names, [row for row in rows if row[1]]

    @api.model
    def _known_channels(self):
        """Configured channels, channel records, and channels with jobs to run."""
        return self._channels_and_depth(self._channel_config()[1])[0]

    @api.model
    def get_stats(self, window=DEFAULT_WINDOW, now=None):
        """Job statistics over the last ``window`` minutes, as a plain dict.

        Two SQL statements, whatever the window and the size of queue_job:
        the channels with their queue depth, then everything else (see
        :meth:`_stats_query`). Python only shapes their results.
        """
        if not self.env.su and not self.env.user.has_group("async_lab.async_lab_group_user"):
            # Raw SQL below reads queue_job past its access rules: check here,
            # since this public method is also reachable over RPC.
            raise AccessError(_("Job statistics need the Async Lab / User group."))
        window = max(1, min(int(window), MAX_WINDOW))
        now = now or utcnow()
        since = now - timedelta(minutes=window)
        start = minute_floor(since)
        config_text, config = self._channel_config()
        names, depth = self._channels_and_depth(config)  # flushes queue.job
        self.env["async_lab.metric"].flush_model()
        self.env["async_lab.worker"].flush_model()
        self.env.cr.execute(self._stats_query(names, since, now, start))
        done, failed, series_rows, runners, last_done_dispatch = self.env.cr.fetchone()
        last_dispatch = max(filter(None, [last_done_dispatch, *(row[3] for row in depth)]), default=None)

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
        for channel, state, count, _enqueued in depth:
            if channel in channels:
                channels[channel][state] = count
        for channel, count, count_minute, *stages in done or []:
            row = channels[channel]
            row.update(done=count, done_last_minute=count_minute, throughput_per_minute=round(count / window, 2))
            for stage, values in zip(STAGES, stages, strict=True):
                p50, p95 = values or (None, None)  # None: no job of the window has both timestamps
                row["latency"][stage] = {"p50": seconds(p50), "p95": seconds(p95)}
        for channel, count, count_minute in failed or []:
            channels[channel].update(failed=count, failed_last_minute=count_minute)

        minutes = []
        minute = start
        while minute <= now:
            minutes.append(minute)
            minute += timedelta(minutes=1)
        series = {}
        for channel, index, done_count, failed_count in series_rows or []:
            if channel not in series:
                series[channel] = {"done": [0] * len(minutes), "failed": [0] * len(minutes)}
            series[channel]["done"][index] += done_count
            series[channel]["failed"][index] += failed_count

        rows = list(channels.values())
        runners = runners or []
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
            "series": {
                "minutes": [iso(m) for m in minutes],
                "channels": {name: series[name] for name in names if name in series},
            },
            "runner": {
                # A runner process (prefork), or a threaded server with a runner thread.
                "alive": bool(runners),
                "pid": runners[0][0] if runners else None,
                "host": runners[0][1] if runners else None,
                "pids": [r[0] for r in runners],
                "last_dispatched": iso(last_dispatch),
                "channels_config": config_text,
            },
        }

    @api.model
    def _stats_query(self, names, since, now, start):
        """The second statement of :meth:`get_stats`, on channels ``names``.

        Its one row holds, as JSON arrays: the window's done jobs
        ``(channel, count, count of the last minute, [p50, p95] of each
        stage)`` (index-only scan of async_lab's done-jobs index) and failed
        jobs ``(channel, count, count of the last minute)``, by the time they
        started (failed-jobs index); the per-minute series ``(channel, minute
        index, done, failed)``: the buckets the rollup cron stored, then the
        minutes after the last stored one counted live, as the rollup counts
        them; the alive job runners ``(pid, host)``, latest first; and the
        last enqueue time of the window's done jobs.

        ``names`` is a literal array, so the index scans return the rows in
        channel order, as the percentiles' grouping needs (an array computed
        inside the statement costs a sort of the window's rows).
        date_part() gives float8 durations: extract() gives numeric, several
        times slower to sort for the percentiles.
        """
        return SQL(
            """
            WITH done AS (
                SELECT channel, count(*) AS count, count(*) FILTER (WHERE date_done >= %(last_minute)s) AS minute,
                       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
                           ORDER BY date_part('epoch', date_enqueued - date_created)) AS created_enqueued,
                       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
                           ORDER BY date_part('epoch', date_started - date_enqueued)) AS enqueued_started,
                       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
                           ORDER BY date_part('epoch', date_done - date_started)) AS started_done,
                       max(date_enqueued) AS enqueued
                  FROM queue_job
                 WHERE state = 'done' AND channel = ANY(%(channels)s)
                   AND date_done >= %(since)s AND date_done <= %(now)s
                 GROUP BY channel
            ),
            failed AS (
                SELECT channel, count(*) AS count, count(*) FILTER (WHERE date_started >= %(last_minute)s) AS minute
                  FROM queue_job
                 WHERE state = 'failed' AND channel = ANY(%(channels)s) AND date_started >= %(since)s
                 GROUP BY channel
            ),
            stored AS MATERIALIZED (
                SELECT channel, minute, done, failed FROM async_lab_metric
                 WHERE minute >= %(start)s AND minute <= %(now)s
            ),
            live AS (SELECT coalesce(max(minute) + interval '1 minute', %(start)s) AS since FROM stored),
            series AS (
                SELECT channel, minute, done, failed FROM stored
                 UNION ALL
                SELECT channel, date_trunc('minute', date_done), count(*), 0
                  FROM queue_job, live
                 WHERE state = 'done' AND channel = ANY(%(channels)s)
                   AND date_done >= live.since AND date_done <= %(now)s
                 GROUP BY 1, 2
                 UNION ALL
                SELECT channel, date_trunc('minute', date_started), 0, count(*)
                  FROM queue_job, live
                 WHERE state = 'failed' AND channel = ANY(%(channels)s)
                   AND date_started >= live.since AND date_started <= %(now)s
                 GROUP BY 1, 2
            )
            SELECT (SELECT json_agg(json_build_array(channel, count, minute, created_enqueued, enqueued_started,
                                                     started_done)) FROM done),
                   (SELECT json_agg(json_build_array(channel, count, minute)) FROM failed),
                   (SELECT json_agg(json_build_array(
                               channel, date_part('epoch', minute - %(start)s)::int / 60, done, failed))
                      FROM series),
                   (SELECT json_agg(json_build_array(pid, host) ORDER BY last_seen DESC)
                      FROM async_lab_worker
                     WHERE state = 'alive' AND (role = 'jobrunner'
                           OR (role = 'threaded' AND threads @> '[{"role": "jobrunner"}]'::jsonb))),
                   (SELECT max(enqueued) FROM done)
            """,
            channels=names, since=since, now=now, start=start,
            last_minute=now - timedelta(minutes=1),
        )  # fmt: skip

    @api.model
    def _notify_dashboard(self, kind, payload=None):
        """Tell open dashboards that fresh figures exist (bus, after commit)."""
        self.env["bus.bus"]._sendone(DASHBOARD_CHANNEL, "async_lab.refresh", dict(payload or {}, kind=kind))
