# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from datetime import datetime, timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..lib import metrics
from ..lib.times import minute_floor
from .queue_job import DONE_STAGES

#: Minutes recomputed at each rollup, for jobs finished late in a minute.
REFRESH_MINUTES = 2
#: The longest span one rollup stores.
MAX_ROLLUP_SPAN = timedelta(hours=6)
#: One row: the span the minute rows cover (:meth:`AsyncLabMetric._rolled`).
ROLLUP_TABLE = "async_lab_metric_rollup"
#: The hour rows: the sums of the minute rows of each hour and channel, so
#: that a long window reads a few hundred rows, not one per minute.
HOUR_TABLE = "async_lab_metric_hour"
#: Raw columns of the minute rows (the ORM has no array fields), also those
#: of the hour rows: per stage of the done jobs, their count in each bucket
#: of :data:`..lib.metrics.BUCKETS` (``int[]``, ``+Inf`` last); the done
#: jobs whose enqueue instant is queue_job's own, to the second (``coarse``);
#: and the last enqueue time of the done jobs.
HISTOGRAMS = {stage: stage + "_hist" for stage in metrics.STAGES}
RAW_COLUMNS = {"coarse": "int", "last_enqueued": "timestamp", **dict.fromkeys(HISTOGRAMS.values(), "int[]")}
#: What the minute and the hour rows share, in this order.
ROW_COLUMNS = ("done", "failed", "coarse", "last_enqueued", *HISTOGRAMS.values())


def drop_rollup_tables(cr):
    """Drop the tables the minute rows' model does not own (the uninstall)."""
    for table in (HOUR_TABLE, ROLLUP_TABLE):
        cr.execute(SQL("DROP TABLE IF EXISTS %s", SQL.identifier(table)))


def column_exists(cr, table, column):
    cr.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = %s AND column_name = %s",
        [table, column],
    )
    return bool(cr.fetchone())


def done_by_minute(channels, where):
    """SQL of the done jobs of ``channels`` matching ``where`` (SQL on queue_job), by channel and minute.

    Its columns: ``channel, minute, done, coarse, last_enqueued``, then the
    stages' histograms (:data:`HISTOGRAMS`), read from async_lab's done-jobs
    index, whose expressions are the stages.
    """
    stages = metrics.STAGES
    return SQL(
        """SELECT channel, date_trunc('minute', date_done) AS minute, count(*) AS done,
                  count(*) FILTER (WHERE async_lab_date_received IS NULL AND date_enqueued IS NOT NULL) AS coarse,
                  max(date_enqueued) AS last_enqueued, %(histograms)s
             FROM (SELECT channel, date_done, date_enqueued, async_lab_date_received, %(buckets)s
                     FROM queue_job WHERE state = 'done' AND channel = ANY(%(channels)s) AND %(where)s) AS jobs
            GROUP BY 1, 2""",
        histograms=SQL(", ").join(
            SQL(
                "ARRAY[%s]::int[] AS %s",
                SQL(", ").join(
                    SQL("count(*) FILTER (WHERE %s = %s)", SQL.identifier("b_" + stage), index)
                    for index in range(1, len(metrics.BUCKETS) + 2)
                ),
                SQL.identifier(HISTOGRAMS[stage]),
            )
            for stage in stages
        ),
        buckets=SQL(", ").join(
            SQL("%s AS %s", SQL(metrics.bucket_sql(DONE_STAGES[stage])), SQL.identifier("b_" + stage))
            for stage in stages
        ),
        channels=channels,
        where=where,
    )


def histogram_sum(column):
    """SQL aggregate: the element-wise sum of the histograms of ``column`` (SQL), as ``bigint[]``.

    One ``sum`` per bucket: subscripts of fixed-width arrays are cheap, far
    cheaper than unnesting each row's array.
    """
    return SQL(
        "ARRAY[%s]",
        SQL(", ").join(
            SQL("coalesce(sum(%s[%s]), 0)::bigint", column, index) for index in range(1, len(metrics.BUCKETS) + 2)
        ),
    )


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
        async_lab adds to queue_job (see models/queue_job.py); the stages'
        durations are those the done-jobs index holds.
        """
        cr = self.env.cr
        cr.execute(
            SQL(
                """
            SELECT m.*, p.wait, p.run
              FROM (%(minutes)s) AS m
              JOIN (SELECT channel, date_trunc('minute', date_done) AS minute,
                           percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
                               ORDER BY date_part('epoch', date_started - date_created)) AS wait,
                           percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY %(run)s) AS run
                      FROM queue_job
                     WHERE state = 'done' AND channel = ANY(%(channels)s) AND date_done >= %(since)s
                       AND date_done < %(until)s
                     GROUP BY 1, 2) AS p USING (channel, minute)
            """,
                minutes=done_by_minute(list(channels), SQL("date_done >= %s AND date_done < %s", since, until)),
                run=SQL(DONE_STAGES["started_done"]),
                channels=list(channels),
                since=since,
                until=until,
            )
        )
        buckets = {}
        for row in cr.dictfetchall():
            wait, run = row.pop("wait"), row.pop("run")
            buckets[(row["channel"], row["minute"])] = dict(
                row, failed=0, wait_p50=wait[0], wait_p95=wait[1], run_p50=run[0], run_p95=run[1]
            )
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
                    "wait_p50": None,
                    "wait_p95": None,
                    "run_p50": None,
                    "run_p95": None,
                    **{column: None for column in RAW_COLUMNS},
                    "coarse": 0,
                },
            )
            bucket["failed"] = failed
        return sorted(buckets.values(), key=lambda b: (b["minute"], b["channel"]))

    @api.model
    def _rolled(self):
        """``(from, until)``: the span the minute rows cover, every minute of it stored (None, None: none)."""
        self.env.cr.execute(SQL("SELECT rolled_from, rolled_until FROM %s", SQL.identifier(ROLLUP_TABLE)))
        return self.env.cr.fetchone() or (None, None)

    @api.model
    def _rollup(self, now=None):
        """Store the buckets of the closed minutes since the last rollup, and some of the backlog before.

        The first rollup stores the last hour. Each one after stores the
        minutes since the one before, and, until the minute rows reach back
        over the days the metrics are kept, a span before the first of them
        (the jobs from before the install). A backlog is stored a span
        (:data:`MAX_ROLLUP_SPAN`) at a time, so that no run outlasts a cron's
        time limit. Either way the rows cover one span with no gap
        (:meth:`_rolled`): the statistics read what is outside it from the
        jobs.
        """
        now = now or fields.Datetime.now()
        until = minute_floor(now)
        rolled_from, rolled_until = self._rolled()
        if rolled_until is None:
            spans = [(until - timedelta(hours=1), until)]
        else:
            since = min(rolled_until, until) - timedelta(minutes=REFRESH_MINUTES)
            spans = [(since, min(until, since + MAX_ROLLUP_SPAN))]
            days = self.env["ir.config_parameter"]._async_lab_int("async_lab.metric_retention_days")
            oldest = until - timedelta(days=days)
            if rolled_from > oldest:
                spans.append((max(oldest, rolled_from - MAX_ROLLUP_SPAN), rolled_from))
        count = sum(self._store_buckets(since, span_until, now) for since, span_until in spans)
        self.env.cr.execute(
            SQL(
                "INSERT INTO %(table)s (id, rolled_from, rolled_until) VALUES (1, %(since)s, %(until)s)"
                " ON CONFLICT (id) DO UPDATE SET rolled_from = least(%(table)s.rolled_from, EXCLUDED.rolled_from),"
                " rolled_until = greatest(%(table)s.rolled_until, EXCLUDED.rolled_until)",
                table=SQL.identifier(ROLLUP_TABLE),
                since=min(since for since, _until in spans),
                until=max(span_until for _since, span_until in spans),
            )
        )
        self.invalidate_model()
        return count

    @api.model
    def _store_buckets(self, since, until, now):
        """Store the buckets of [since, until), and the hour rows of their hours; return how many."""
        cr = self.env.cr
        channels = self.env["async_lab.stats"]._known_channels()
        buckets = self._compute_buckets(channels, since, until)
        for bucket in buckets:
            cr.execute(
                SQL(
                    """
                INSERT INTO async_lab_metric (channel, minute, done, failed, wait_p50, wait_p95,
                                              run_p50, run_p95, %(raw)s,
                                              create_uid, write_uid, create_date, write_date)
                VALUES (%(channel)s, %(minute)s, %(done)s, %(failed)s, %(wait_p50)s, %(wait_p95)s,
                        %(run_p50)s, %(run_p95)s, %(raw_values)s, %(uid)s, %(uid)s, %(now)s, %(now)s)
                ON CONFLICT (channel, minute) DO UPDATE SET
                    done = EXCLUDED.done, failed = EXCLUDED.failed,
                    wait_p50 = EXCLUDED.wait_p50, wait_p95 = EXCLUDED.wait_p95,
                    run_p50 = EXCLUDED.run_p50, run_p95 = EXCLUDED.run_p95, %(raw_updates)s,
                    write_date = EXCLUDED.write_date
                """,
                    raw=SQL(", ").join(map(SQL.identifier, RAW_COLUMNS)),
                    raw_values=SQL(", ").join(
                        SQL("%s::%s", bucket[column], SQL(kind)) for column, kind in RAW_COLUMNS.items()
                    ),
                    raw_updates=SQL(", ").join(
                        SQL("%s = EXCLUDED.%s", SQL.identifier(column), SQL.identifier(column))
                        for column in RAW_COLUMNS
                    ),
                    uid=self.env.uid,
                    now=now,
                    **{key: value for key, value in bucket.items() if key not in RAW_COLUMNS},
                )
            )
        self._rollup_hours(since, until)
        return len(buckets)

    @api.model
    def _rollup_hours(self, since=None, until=None):
        """Sum the minute rows of the hours of [since, until) (all of them by default) into the hour rows."""
        self.env.cr.execute(
            SQL(
                """
            INSERT INTO %(hours)s (channel, hour, %(columns)s)
            SELECT channel, date_trunc('hour', minute), sum(done), sum(failed), sum(coarse), max(last_enqueued),
                   %(histograms)s
              FROM async_lab_metric
             WHERE minute >= date_trunc('hour', %(since)s::timestamp)
               AND minute < date_trunc('hour', %(until)s::timestamp) + interval '1 hour'
             GROUP BY 1, 2
            ON CONFLICT (channel, hour) DO UPDATE SET %(updates)s
            """,
                hours=SQL.identifier(HOUR_TABLE),
                columns=SQL(", ").join(map(SQL.identifier, ROW_COLUMNS)),
                histograms=SQL(", ").join(
                    SQL("%s::int[]", histogram_sum(SQL.identifier(column))) for column in HISTOGRAMS.values()
                ),
                since=since or datetime.min,
                until=until or datetime.max,
                updates=SQL(", ").join(
                    SQL("%s = EXCLUDED.%s", SQL.identifier(column), SQL.identifier(column)) for column in ROW_COLUMNS
                ),
            )
        )

    def init(self):
        """Create the raw columns of the minute rows and the hour rows, filled from what is there.

        The minute rows stored before the histograms existed get them from
        queue_job's done jobs (those that autovacuum left), in one statement.
        """
        cr = self.env.cr
        missing = [column for column in RAW_COLUMNS if not column_exists(cr, self._table, column)]
        for column in missing:
            cr.execute(
                SQL(
                    "ALTER TABLE %s ADD COLUMN %s %s",
                    SQL.identifier(self._table),
                    SQL.identifier(column),
                    SQL(RAW_COLUMNS[column]),
                )
            )
        if missing:
            cr.execute("SELECT min(minute), max(minute) FROM async_lab_metric")
            first, last = cr.fetchone()
            if first:
                cr.execute("SELECT array_agg(DISTINCT channel) FROM async_lab_metric")
                channels = cr.fetchone()[0]
                cr.execute(
                    SQL(
                        """UPDATE async_lab_metric AS m SET %(updates)s
                             FROM (%(minutes)s) AS j WHERE m.channel = j.channel AND m.minute = j.minute""",
                        updates=SQL(", ").join(
                            SQL("%s = j.%s", SQL.identifier(column), SQL.identifier(column)) for column in RAW_COLUMNS
                        ),
                        minutes=done_by_minute(
                            channels,
                            SQL("date_done >= %s AND date_done < %s", first, last + timedelta(minutes=1)),
                        ),
                    )
                )
        cr.execute("SELECT to_regclass(%s) IS NULL", [HOUR_TABLE])
        if cr.fetchone()[0]:
            cr.execute(
                SQL(
                    "CREATE TABLE %s (channel varchar NOT NULL, hour timestamp NOT NULL,"
                    " done bigint NOT NULL DEFAULT 0, failed bigint NOT NULL DEFAULT 0, coarse bigint,"
                    " last_enqueued timestamp, %s, PRIMARY KEY (hour, channel))",
                    SQL.identifier(HOUR_TABLE),
                    SQL(", ").join(SQL("%s int[]", SQL.identifier(column)) for column in HISTOGRAMS.values()),
                )
            )
            missing = True
        if missing:
            self._rollup_hours()
        cr.execute("SELECT to_regclass(%s) IS NULL", [ROLLUP_TABLE])
        if cr.fetchone()[0]:
            cr.execute(
                SQL(
                    "CREATE TABLE %s (id int PRIMARY KEY CHECK (id = 1), rolled_from timestamp NOT NULL,"
                    " rolled_until timestamp NOT NULL)",
                    SQL.identifier(ROLLUP_TABLE),
                )
            )
            # Rows of an earlier version: stored since the first, up to the last.
            cr.execute(
                SQL(
                    "INSERT INTO %s SELECT 1, min(minute), max(minute) + interval '1 minute' FROM async_lab_metric"
                    " HAVING count(*) > 0",
                    SQL.identifier(ROLLUP_TABLE),
                )
            )

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
        oldest = minute_floor(now) - timedelta(days=days)
        cr = self.env.cr
        cr.execute("DELETE FROM async_lab_metric WHERE minute < %s", [oldest])
        cr.execute(SQL("DELETE FROM %s WHERE hour < %s", SQL.identifier(HOUR_TABLE), oldest - timedelta(hours=1)))
        # The rows left cover no minute before: the statistics read those from the jobs.
        cr.execute(
            SQL(
                "UPDATE %s SET rolled_from = least(greatest(rolled_from, %s), rolled_until)",
                SQL.identifier(ROLLUP_TABLE),
                oldest,
            )
        )
        self.invalidate_model()
        self.env["async_lab.burst"]._prune_finished(now)
