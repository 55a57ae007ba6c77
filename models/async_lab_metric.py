# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..lib.times import minute_floor
from .queue_job import DONE_STAGES

#: Minutes recomputed at each rollup, for jobs finished late in a minute.
REFRESH_MINUTES = 2


class AsyncLabMetric(models.Model):
    """Per-minute, per-channel queue_job figures, rolled up by a cron.

    ``wait`` is created → started, ``run`` is started → done, in seconds.
    A failed job counts in the minute it started.
    """

    _name = "async_lab.metric"
    _description = "Job metrics per minute and channel"
    _order = "minute desc, channel"
    _rec_name = "channel"

    channel = fields.Char(required=True, readonly=True, index=True)
    minute = fields.Datetime(required=True, readonly=True, index=True)
    done = fields.Integer("Jobs done", readonly=True)
    failed = fields.Integer("Jobs failed", readonly=True)
    # Percentiles of a minute: those of several minutes cannot be added nor
    # averaged, so a group row shows none. Created, started and done are
    # stamped to the microsecond: so are these percentiles (the form says so).
    wait_p50 = fields.Float(
        "Wait p50 (s)",
        readonly=True,
        digits=(16, 3),
        group_operator=False,
        help="Created → started, median of the minute's done jobs.",
    )
    wait_p95 = fields.Float(
        "Wait p95 (s)",
        readonly=True,
        digits=(16, 3),
        group_operator=False,
        help="Created → started, 95th percentile of the minute's done jobs.",
    )
    run_p50 = fields.Float(
        "Run p50 (s)",
        readonly=True,
        digits=(16, 3),
        group_operator=False,
        help="Started → done, median of the minute's done jobs.",
    )
    run_p95 = fields.Float(
        "Run p95 (s)",
        readonly=True,
        digits=(16, 3),
        group_operator=False,
        help="Started → done, 95th percentile of the minute's done jobs.",
    )

    _sql_constraints = [("bucket_uniq", "unique(channel, minute)", "One bucket per channel and minute.")]

    @api.model
    def _compute_buckets(self, channels, since, until):
        """Buckets of [since, until) straight from queue_job, in SQL.

        Done and failed jobs are found through the partial indexes that
        async_lab adds to queue_job (see models/queue_job.py); the run time
        is the duration that index holds.
        """
        cr = self.env.cr
        cr.execute(
            SQL(
                """
            SELECT channel, date_trunc('minute', date_done) AS minute, count(*),
                   percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
                       ORDER BY date_part('epoch', date_started - date_created)),
                   percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY %s)
              FROM queue_job
             WHERE state = 'done' AND channel = ANY(%s) AND date_done >= %s AND date_done < %s
             GROUP BY 1, 2
            """,
                SQL(DONE_STAGES["started_done"]),
                list(channels),
                since,
                until,
            )
        )
        buckets = {}
        for channel, minute, done, wait, run in cr.fetchall():
            buckets[(channel, minute)] = {
                "channel": channel,
                "minute": minute,
                "done": done,
                "failed": 0,
                "wait_p50": wait[0],
                "wait_p95": wait[1],
                "run_p50": run[0],
                "run_p95": run[1],
            }
        cr.execute(
            SQL(
                """
            SELECT channel, date_trunc('minute', date_started), count(*)
              FROM queue_job
             WHERE state = 'failed' AND channel = ANY(%s) AND date_started >= %s AND date_started < %s
             GROUP BY 1, 2
            """,
                list(channels),
                since,
                until,
            )
        )
        for channel, minute, failed in cr.fetchall():
            bucket = buckets.setdefault(
                (channel, minute),
                {
                    "channel": channel,
                    "minute": minute,
                    "done": 0,
                    "failed": 0,
                    "wait_p50": None,
                    "wait_p95": None,
                    "run_p50": None,
                    "run_p95": None,
                },
            )
            bucket["failed"] = failed
        return sorted(buckets.values(), key=lambda b: (b["minute"], b["channel"]))

    @api.model
    def _rollup(self, now=None):
        """Store the buckets of the closed minutes since the last rollup."""
        now = now or fields.Datetime.now()
        until = minute_floor(now)
        cr = self.env.cr
        cr.execute("SELECT max(minute) FROM async_lab_metric")
        last = cr.fetchone()[0]
        since = (last - timedelta(minutes=REFRESH_MINUTES)) if last else until - timedelta(hours=1)
        channels = self.env["async_lab.stats"]._known_channels()
        buckets = self._compute_buckets(channels, since, until)
        for bucket in buckets:
            cr.execute(
                SQL(
                    """
                INSERT INTO async_lab_metric (channel, minute, done, failed, wait_p50, wait_p95,
                                              run_p50, run_p95, create_uid, write_uid, create_date, write_date)
                VALUES (%(channel)s, %(minute)s, %(done)s, %(failed)s, %(wait_p50)s, %(wait_p95)s,
                        %(run_p50)s, %(run_p95)s, %(uid)s, %(uid)s, %(now)s, %(now)s)
                ON CONFLICT (channel, minute) DO UPDATE SET
                    done = EXCLUDED.done, failed = EXCLUDED.failed,
                    wait_p50 = EXCLUDED.wait_p50, wait_p95 = EXCLUDED.wait_p95,
                    run_p50 = EXCLUDED.run_p50, run_p95 = EXCLUDED.run_p95, write_date = EXCLUDED.write_date
                """,
                    uid=self.env.uid,
                    now=now,
                    **bucket,
                )
            )
        self.invalidate_model()
        return len(buckets)

    @api.model
    def _cron_rollup(self):
        """Async Lab: roll up job metrics (every minute)."""
        count = self._rollup()
        self.env["async_lab.metrics"]._compact_counters()
        self.env["async_lab.stats"]._notify_dashboard("metrics", {"buckets": count})

    @api.model
    def _cron_prune(self, now=None):
        """Async Lab: prune old metrics and finished bursts."""
        now = now or fields.Datetime.now()
        days = self.env["ir.config_parameter"]._async_lab_int("async_lab.metric_retention_days")
        self.env.cr.execute("DELETE FROM async_lab_metric WHERE minute < %s", [now - timedelta(days=days)])
        self.invalidate_model()
        self.env["async_lab.burst"]._prune_finished(now)
