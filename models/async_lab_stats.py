# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import hashlib
import logging
from datetime import timedelta

from odoo import _, api, models, tools
from odoo.exceptions import AccessError
from odoo.tools import SQL

from odoo.addons.queue_job.jobrunner.channels import ChannelManager
from odoo.addons.queue_job.jobrunner.runner import _channels

from ..lib import metrics
from ..lib.channels import effective_capacity
from ..lib.groups import GROUP_USER
from ..lib.times import iso, minute_floor, utcnow
from .async_lab_metric import HISTOGRAMS, HOUR_TABLE, done_by_minute, histogram_sum
from .queue_job import ACTIVE_STATES, COARSE_RESOLUTION, DONE_STAGES, FINE_RESOLUTION

_logger = logging.getLogger(__name__)

#: Longest statistics window, in minutes: a week.
MAX_WINDOW = 7 * 24 * 60
DEFAULT_WINDOW = 60
#: Longest window whose figures are exact, read from queue_job's jobs. A
#: longer one reads the rollups (:meth:`AsyncLabStats._rollup_stats_query`):
#: exact counts, percentiles from histograms.
EXACT_WINDOW = 60
#: Steps of the series, in minutes, by the longest window they serve: about
#: 300 points at most, and whole hours beyond a day, which the hour rows give.
SERIES_STEPS = ((6 * 60, 1), (24 * 60, 5), (MAX_WINDOW, 60))
STAGES = tuple(DONE_STAGES)
#: The stages that begin or end at the enqueue instant.
COARSE_STAGES = ("created_enqueued", "enqueued_started")
DASHBOARD_CHANNEL = "async_lab.dashboard"
#: The start of the name of the function :meth:`AsyncLabStats.get_stats`
#: calls (:meth:`AsyncLabStats._stats_function`): its two statements
#: (:meth:`AsyncLabStats._channels_query`, :meth:`AsyncLabStats._stats_query`)
#: in one round trip, planned once per connection (PL/pgSQL keeps the plans)
#: instead of at every call.
STATS_FUNCTION = "async_lab_job_stats_"
#: Namespace of the advisory lock under which a stats function is created.
STATS_FUNCTION_LOCK = 0x616C7366  # "alsf"


def stats_function_exists(cr, name):
    cr.execute("SELECT to_regproc(%s) IS NOT NULL", [name])
    return cr.fetchone()[0]


def create_stats_function(cr, name, definition):
    """Create the stats function ``name`` by ``definition`` (a CREATE OR
    REPLACE statement) unless it exists, in the transaction of ``cr``.

    Safe when several processes do it at once: they take their turn on an
    advisory lock held until the end of their transaction, so the next one
    finds the function the first one committed. Should it not see it yet,
    CREATE OR REPLACE rewrites the same definition instead of failing on a
    duplicate.
    """
    cr.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [STATS_FUNCTION_LOCK, name])
    if not stats_function_exists(cr, name):
        cr.execute(definition)


def drop_stats_functions(cr, keep=None):
    """Drop the stats functions of the current schema, but ``keep``."""
    cr.execute(
        "SELECT oid::regprocedure::text FROM pg_proc"
        " WHERE starts_with(proname, %s) AND proname <> %s AND pronamespace = current_schema()::regnamespace",
        [STATS_FUNCTION, keep or ""],
    )
    for (signature,) in cr.fetchall():
        cr.execute(SQL("DROP FUNCTION %s", SQL(signature)))  # regprocedure text: quoted where needed


def seconds(value):
    return round(value, 4) if value is not None else None


def exact_latency(row):
    """Latency keys of a channel from an exact done row ``(channel, count, count of the last minute,
    [p50, p95] of each stage, count of jobs whose enqueue instant is to the second)``."""
    *stages, coarse = row[3:]
    latency, bounds = {}, {}
    for stage, values in zip(STAGES, stages, strict=True):
        p50, p95 = values or (None, None)  # None: no job of the window has both timestamps
        latency[stage] = {"p50": seconds(p50), "p95": seconds(p95)}
        bounds[stage] = {q: None if value is None else [value, value] for q, value in latency[stage].items()}
    resolution = dict.fromkeys(STAGES, FINE_RESOLUTION)
    if coarse:  # some jobs' enqueue instant is the runner's, to the second
        resolution.update(dict.fromkeys(COARSE_STAGES, COARSE_RESOLUTION))
    return {"latency": latency, "latency_resolution": resolution, "latency_bounds": bounds}


def histogram_latency(row):
    """Latency keys of a channel from a done row of the rollups ``(channel, count, count of the last
    minute, histogram of each stage, count of jobs whose enqueue instant is to the second)``.

    The percentiles are interpolated in their bucket (:func:`..lib.metrics.histogram_quantile`);
    ``latency_bounds`` gives that bucket, where the true value lies, and ``latency_resolution`` the
    widest of those of the stage (None above the last bound: no upper bound).

    >>> counts = [0] * 7 + [4] + [0] * 11  # four jobs of 0.5 to 1 s
    >>> keys = histogram_latency(("root", 4, 0, counts, counts, [0] * 19, 0))
    >>> keys["latency"]["started_done"], keys["latency"]["created_enqueued"]
    ({'p50': None, 'p95': None}, {'p50': 0.75, 'p95': 0.975})
    >>> keys["latency_bounds"]["created_enqueued"], keys["latency_resolution"]["created_enqueued"]
    ({'p50': [0.5, 1.0], 'p95': [0.5, 1.0]}, 0.5)
    """
    *histograms, coarse = row[3:]
    latency, bounds, resolution = {}, {}, {}
    for stage, counts in zip(STAGES, histograms, strict=True):
        found = {q: metrics.histogram_quantile(fraction, counts) for q, fraction in (("p50", 0.5), ("p95", 0.95))}
        latency[stage] = {q: seconds(value[0]) if value else None for q, value in found.items()}
        bounds[stage] = {q: [value[1], value[2]] if value else None for q, value in found.items()}
        widths = [value[2] - value[1] if value[2] is not None else None for value in found.values() if value]
        floor = COARSE_RESOLUTION if coarse and stage in COARSE_STAGES else FINE_RESOLUTION
        resolution[stage] = None if None in widths else max([floor, *widths])
    return {"latency": latency, "latency_resolution": resolution, "latency_bounds": bounds}


def cut(start, now, rolled):
    """``(m_lo, tail, h1, h2)``: where :meth:`AsyncLabStats._rollup_stats_query` cuts ``[start, now]``.

    ``rolled`` is the span ``(from, until)`` the minute rows cover (None,
    None: none). The jobs are read before ``m_lo`` and from ``tail``; the
    minute rows in between, but the hour rows in ``[h1, h2)``.

    >>> from datetime import datetime as dt
    >>> rolled = (dt(2026, 12, 1, 0, 0), dt(2026, 12, 5, 10, 47))
    >>> [t.strftime("%d %H:%M") for t in cut(dt(2026, 12, 4, 8, 12, 30), dt(2026, 12, 5, 10, 47, 40), rolled)]
    ['04 08:13', '05 10:47', '04 09:00', '05 10:00']
    >>> [t.strftime("%d %H:%M") for t in cut(dt(2026, 12, 4, 8, 12, 30), dt(2026, 12, 5, 10, 47, 40), (None, None))]
    ['04 08:13', '04 08:13', '04 09:00', '04 09:00']
    """
    ceiling = minute_floor(start)
    if ceiling != start:
        ceiling += timedelta(minutes=1)
    rolled_from, rolled_until = rolled
    tail = max(ceiling, min(rolled_until or ceiling, minute_floor(now)))
    m_lo = min(max(ceiling, rolled_from or ceiling), tail)
    h1 = m_lo.replace(minute=0, second=0, microsecond=0)
    if h1 != m_lo:
        h1 += timedelta(hours=1)
    return m_lo, tail, h1, max(h1, tail.replace(minute=0, second=0, microsecond=0))


def series_step(window):
    """Minutes between two points of the series of a ``window`` of minutes.

    >>> series_step(60), series_step(360), series_step(361), series_step(1440), series_step(10080)
    (1, 1, 5, 5, 60)
    """
    return next(step for longest, step in SERIES_STEPS if window <= longest)


def step_floor(moment, step):
    """``moment`` down to a multiple of ``step`` minutes since the epoch (as SQL's ``date_bin``).

    >>> from datetime import datetime
    >>> step_floor(datetime(2026, 12, 5, 10, 47, 12), 5), step_floor(datetime(2026, 12, 5, 10, 47, 12), 60)
    (datetime.datetime(2026, 12, 5, 10, 45), datetime.datetime(2026, 12, 5, 10, 0))
    """
    floored = minute_floor(moment)
    return floored - timedelta(minutes=(floored.hour * 60 + floored.minute) % step)


class AsyncLabStats(models.AbstractModel):
    """The single source of job statistics.

    The dashboard, the JSON routes and any exporter read :meth:`get_stats`;
    none recomputes figures its own way. Everything is an SQL aggregate on
    indexes of queue_job: its state index for the active jobs, and the two
    partial indexes async_lab adds (done jobs by channel and date_done, with
    their stage durations; failed jobs by channel and date_started).
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
    def _channel_capacity(self, channel):
        """How many jobs of ``channel`` the runner's configuration lets run at once, or None."""
        return effective_capacity(self._channel_config()[1], channel)

    @api.model
    def _channels_query(self, config_names):
        """The known channels, the queue depth and the last enqueue time, as one row.

        The channels (an array in code point order, as Python sorts) are the
        configured ones (``config_names``), the channel records and the
        channels with jobs to run. The depth is a JSON array of ``(channel,
        state, count)`` of the active jobs (queue_job's state index: active
        jobs are few), then the last time one of them was enqueued.
        ``config_names`` may also be :class:`~odoo.tools.SQL`, like the
        arguments of :meth:`_stats_query`.
        """
        return SQL(
            """
            WITH active AS (
                SELECT channel, state, count(*) AS count, max(date_enqueued) AS enqueued
                  FROM queue_job WHERE state IN %(active)s GROUP BY 1, 2
            )
            SELECT (SELECT coalesce(array_agg(name ORDER BY name COLLATE "C"), '{}')
                      FROM (SELECT channel FROM active
                             UNION SELECT unnest(%(config)s::text[])
                             UNION SELECT complete_name FROM queue_job_channel) AS known (name)
                     WHERE name <> ''),
                   (SELECT json_agg(json_build_array(channel, state, count)) FROM active),
                   (SELECT max(enqueued) FROM active)
            """,
            active=ACTIVE_STATES,
            config=config_names,
        )

    @api.model
    def _known_channels(self):
        """Configured channels, channel records, and channels with jobs to run."""
        self.env["queue.job"].flush_model(["channel", "state"])
        self.env["queue.job.channel"].flush_model(["complete_name"])
        self.env.cr.execute(self._channels_query(list(self._channel_config()[1])))
        return self.env.cr.fetchone()[0]

    @api.model
    def get_stats(self, window=DEFAULT_WINDOW, now=None):
        """Job statistics over the last ``window`` minutes, as a plain dict.

        One SQL statement, whatever the window and the size of queue_job: a
        call of the stats function (:meth:`_stats_function`), which gives the
        channels with their queue depth (:meth:`_channels_query`), then
        everything else on them (:meth:`_stats_query`). Python only shapes
        its result.
        """
        if not self.env.su and not self.env.user.has_group(GROUP_USER):
            # Raw SQL below reads queue_job past its access rules: check here,
            # since this public method is also reachable over RPC.
            raise AccessError(_("Job statistics need the Async Lab / User group."))
        window = max(1, min(int(window), MAX_WINDOW))
        now = now or utcnow()
        since = now - timedelta(minutes=window)
        start = minute_floor(since)
        config_text, config = self._channel_config()
        for model in ("queue.job", "queue.job.channel", "async_lab.metric", "async_lab.worker"):
            self.env[model].flush_model()
        if window <= EXACT_WINDOW:
            step = 1
            self.env.cr.execute(
                SQL(
                    "SELECT * FROM %s(%s, %s, %s, %s, %s)",
                    SQL.identifier(self._installed_stats_function()),
                    list(config),
                    since,
                    now,
                    start,
                    now - timedelta(minutes=1),
                )
            )
            names, depth, done, failed, series_rows, runners, last_dispatch = self.env.cr.fetchone()
            latencies = {row[0]: exact_latency(row) for row in done or []}
        else:
            step = series_step(window)
            rolled = self.env["async_lab.metric"]._rolled()
            self.env.cr.execute(
                self._rollup_stats_query(list(config), since, now, step_floor(start, step), step, rolled)
            )
            names, depth, done, failed, series_rows, runners, last_dispatch = self.env.cr.fetchone()
            latencies = {row[0]: histogram_latency(row) for row in done or []}

        channels = {
            name: {
                "name": name,
                "capacity": config.get(name, {}).get("capacity"),
                "sequential": bool(config.get(name, {}).get("sequential")),
                "configured": name in config,
                **{state: 0 for state in ACTIVE_STATES},
                "done": 0,
                "failed": 0,
                "done_last_minute": 0,
                "failed_last_minute": 0,
                "throughput_per_minute": 0.0,
                "latency": {stage: {"p50": None, "p95": None} for stage in STAGES},
                "latency_resolution": dict.fromkeys(STAGES, FINE_RESOLUTION),
                "latency_bounds": {stage: {"p50": None, "p95": None} for stage in STAGES},
            }
            for name in names
        }
        for channel, state, count in depth or []:
            if channel in channels:
                channels[channel][state] = count
        for channel, count, count_minute, *_rest in done or []:
            row = channels[channel]
            row.update(done=count, done_last_minute=count_minute, throughput_per_minute=round(count / window, 2))
            row.update(latencies[channel])
        for channel, count, count_minute in failed or []:
            channels[channel].update(failed=count, failed_last_minute=count_minute)

        points = []
        point = step_floor(start, step)
        while point <= now:
            points.append(point)
            point += timedelta(minutes=step)
        series = {}
        for channel, index, done_count, failed_count in series_rows or []:
            if channel not in series:
                series[channel] = {"done": [0] * len(points), "failed": [0] * len(points)}
            series[channel]["done"][index] += done_count
            series[channel]["failed"][index] += failed_count

        rows = list(channels.values())
        runners = runners or []
        return {
            "generated_at": iso(now),
            "window_minutes": window,
            # exact: from the jobs; histogram: percentiles of the rollups'
            # histograms, true to the bucket that each channel's
            # latency_bounds gives (counts are exact either way).
            "latency_method": "exact" if window <= EXACT_WINDOW else "histogram",
            "channels": rows,
            "totals": {
                "done_window": sum(r["done"] for r in rows),
                "failed_window": sum(r["failed"] for r in rows),
                "done_last_minute": sum(r["done_last_minute"] for r in rows),
                "failed_last_minute": sum(r["failed_last_minute"] for r in rows),
                **{state: sum(r[state] for r in rows) for state in ACTIVE_STATES},
            },
            "series": {
                "minutes": [iso(m) for m in points],
                "step_minutes": step,
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

    def init(self):
        """Create the stats function of this code, drop those of other versions.

        Like a report model's SQL view, but code and function cannot drift
        apart: its name ends with a hash of its definition. Code changed
        without an update of the module creates its own at its first call
        (:meth:`_installed_stats_function`); the update drops the others.
        """
        name, definition = self._stats_function()
        create_stats_function(self.env.cr, name, definition)
        drop_stats_functions(self.env.cr, keep=name)

    @api.model
    @tools.ormcache()
    def _installed_stats_function(self):
        """The name of the stats function of this code, created if the database lacks it.

        Checked once per registry. The function is missing after a change of
        its code without a module update: it is created then, in the
        caller's transaction, so that the caller's next statement sees it. If
        that transaction rolls back, the function goes with it, and so does
        the name remembered here.
        """
        name, definition = self._stats_function()
        cr = self.env.cr
        if not stats_function_exists(cr, name):
            _logger.info("Creating the job statistics function %s: its code changed since the last update", name)
            create_stats_function(cr, name, definition)
            cr.postrollback.add(self.env.registry.clear_cache)
        return name

    @api.model
    @tools.ormcache()
    def _stats_function(self):
        """``(name, CREATE OR REPLACE FUNCTION statement)`` of the stats function.

        Its statements are those of :meth:`_channels_query` and
        :meth:`_stats_query`, on its parameters (``p_config``: the configured
        channels) and on the channels the first one finds (``v_channels``).
        Its result columns are ``out_*``, so that no name of the statements'
        columns is also that of a variable (PL/pgSQL would refuse them).

        Its plans are generic, made once per connection: the arguments do
        not change the best plan (index scans of the window). And they are
        never JIT-compiled: a generic plan's estimates grow with queue_job,
        and on a large table they would cross ``jit_above_cost``, compiling
        a short statement on every call.
        """
        rest = SQL(
            """(p_config text[], p_since timestamp, p_now timestamp, p_start timestamp, p_last_minute timestamp)
            RETURNS TABLE (out_channels text[], out_depth json, out_done json, out_failed json, out_series json,
                           out_runners json, out_last_enqueued timestamp)
            LANGUAGE plpgsql STABLE
            SET plan_cache_mode = force_generic_plan SET jit = off
            AS $function$
            DECLARE
                v_channels text[];
                v_depth json;
                v_enqueued timestamp;
            BEGIN
                %(channels)s INTO v_channels, v_depth, v_enqueued;
                RETURN QUERY SELECT v_channels, v_depth, w.done, w.failed, w.series, w.runners,
                                    greatest(w.last_enqueued, v_enqueued) FROM (%(window)s) AS w;
            END
            $function$
            """,
            channels=self._channels_query(SQL("p_config")),
            window=self._stats_query(*map(SQL, ("v_channels", "p_since", "p_now", "p_start", "p_last_minute"))),
        )
        digest = hashlib.sha256(repr((rest.code, rest.params)).encode()).hexdigest()
        name = STATS_FUNCTION + digest[:12]
        return name, SQL("CREATE OR REPLACE FUNCTION %s%s", SQL.identifier(name), rest)

    @api.model
    def _stats_query(self, channels, since, now, start, last_minute):
        """The window statement of the stats function, on ``channels``.

        In the function, the arguments are :class:`~odoo.tools.SQL` names of
        its parameters and variables; values give the statement to run
        directly (``EXPLAIN``, tests).

        Its one row holds, as JSON arrays: the window's done jobs
        ``(channel, count, count of the last minute, [p50, p95] of each
        stage, count of jobs whose enqueue instant is to the second)``
        (index-only scan of async_lab's done-jobs index, which holds the
        stage durations) and failed jobs ``(channel, count, count of the
        last minute)``, by the time they started (failed-jobs index); the
        per-minute series ``(channel, minute index, done, failed)``: the
        buckets the rollup cron stored, then the minutes after the last stored
        one counted live, as the rollup counts them; the alive job runners
        ``(pid, host)``, latest first; and the last enqueue time of the
        window's done jobs.

        The stage durations are the expressions of the done-jobs index
        (:data:`~odoo.addons.async_lab.models.queue_job.DONE_STAGES`), so the
        scan reads them instead of computing them; ``date_part()`` gives
        float8, cheaper to sort than ``extract()``'s numeric. The live
        minutes start at a scalar subquery, not a join on ``live``: their
        rows are then a range between two known values, which the planner
        rightly expects to be a small share of queue_job.
        """
        return SQL(
            """
            WITH done AS (
                SELECT channel, count(*) AS count, count(*) FILTER (WHERE date_done >= %(last_minute)s) AS minute,
                       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY %(created_enqueued)s)
                           AS created_enqueued,
                       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY %(enqueued_started)s)
                           AS enqueued_started,
                       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY %(started_done)s) AS started_done,
                       max(date_enqueued) AS enqueued,
                       count(*) FILTER (WHERE async_lab_date_received IS NULL AND date_enqueued IS NOT NULL)
                           AS coarse
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
                  FROM queue_job
                 WHERE state = 'done' AND channel = ANY(%(channels)s)
                   AND date_done >= (SELECT since FROM live) AND date_done <= %(now)s
                 GROUP BY 1, 2
                 UNION ALL
                SELECT channel, date_trunc('minute', date_started), 0, count(*)
                  FROM queue_job
                 WHERE state = 'failed' AND channel = ANY(%(channels)s)
                   AND date_started >= (SELECT since FROM live) AND date_started <= %(now)s
                 GROUP BY 1, 2
            )
            SELECT (SELECT json_agg(json_build_array(channel, count, minute, created_enqueued, enqueued_started,
                                                     started_done, coarse)) FROM done) AS done,
                   (SELECT json_agg(json_build_array(channel, count, minute)) FROM failed) AS failed,
                   (SELECT json_agg(json_build_array(
                               channel, date_part('epoch', minute - %(start)s)::int / 60, done, failed))
                      FROM series) AS series,
                   (%(runners)s) AS runners,
                   (SELECT max(enqueued) FROM done) AS last_enqueued
            """,
            runners=self._runners_query(),
            channels=channels,
            since=since,
            now=now,
            start=start,
            last_minute=last_minute,
            **{stage: SQL(expression) for stage, expression in DONE_STAGES.items()},
        )

    @api.model
    def _runners_query(self):
        """The alive job runners ``(pid, host)`` as a JSON array, latest first: a runner process
        (prefork), or a threaded server with a runner thread."""
        return SQL(
            """SELECT json_agg(json_build_array(pid, host) ORDER BY last_seen DESC)
                 FROM async_lab_worker
                WHERE state = 'alive' AND (role = 'jobrunner'
                      OR (role = 'threaded' AND threads @> '[{"role": "jobrunner"}]'::jsonb))"""
        )

    @api.model
    def _rollup_stats_query(self, config_names, since, now, first_point, step, rolled):
        """The statement of :meth:`get_stats` for windows longer than :data:`EXACT_WINDOW`.

        Its row has the columns of the stats function's, but the done jobs'
        stages are histograms, not percentiles, and the series has a point
        every ``step`` minutes from ``first_point`` (whole steps: the first
        one starts before ``since``, as the exact series' first minute does).

        The window (and, for the series, ``[first_point, now]``) is cut in
        five, each read where it is cheapest:

        1. ``[start, m_lo)``, before the span of the minute rows (the part
           of the first minute that is in it, at least): the jobs, exactly
           (done-jobs and failed-jobs indexes);
        2. ``[m_lo, h1)``: the minute rows up to the first whole hour;
        3. ``[h1, h2)``: the hour rows (:data:`.async_lab_metric.HOUR_TABLE`),
           or the minute rows for a series finer than an hour;
        4. ``[h2, tail)``: the minute rows after the last whole hour;
        5. ``[tail, now]``, after the span of the minute rows: the jobs,
           exactly.

        The minute rows cover one span with no gap, ``rolled``
        (:meth:`.async_lab_metric.AsyncLabMetric._rolled`): what is outside
        (before the first rollup or its backfill, pruned, since the last
        rollup) is read from the jobs. The cut is computed here (:func:`cut`),
        so that the statement holds its bounds as constants: the planner
        then knows how few rows each part reads (with bounds computed in
        SQL it expected a third of queue_job, and the cost of that set off
        JIT compilation, 400 ms). When the cron keeps up, that is the
        jobs of the first and the last minutes, plus at most about 120
        minute rows and 168 hour rows per channel, whatever the size of
        queue_job. Counts are exact; a stored minute's failed jobs are those
        the rollup saw failed.
        """
        channels = SQL("(SELECT names FROM known)::text[]")
        hist = list(HISTOGRAMS.values())
        histograms = SQL(", ").join(map(SQL.identifier, hist))
        no_histograms = SQL(", ").join(SQL("NULL::int[]") for _column in hist)

        def parts(start, hours):
            """``(channel, at, done, failed, coarse, last_enqueued, histograms...)`` of ``[start, now]``."""
            m_lo, tail, h1, h2 = cut(start, now, rolled)

            def rows(table, at, lower, upper, with_histograms=True):
                return SQL(
                    """SELECT channel, %(at)s, done::bigint, failed::bigint, coarse::bigint, last_enqueued, %(hist)s
                         FROM %(table)s
                        WHERE channel = ANY(%(channels)s) AND %(at)s >= %(lower)s AND %(at)s < %(upper)s""",
                    at=SQL.identifier(at),
                    hist=histograms if with_histograms else no_histograms,
                    table=SQL.identifier(table),
                    channels=channels,
                    lower=lower,
                    upper=upper,
                )

            middle = (
                rows(HOUR_TABLE, "hour", h1, h2)
                if hours
                else rows("async_lab_metric", "minute", h1, h2, with_histograms=False)
            )
            return SQL(" UNION ALL ").join(
                [
                    self._live_parts(channels, histograms, no_histograms, start, SQL("<"), m_lo),
                    rows("async_lab_metric", "minute", m_lo, min(h1, tail)),
                    middle,
                    rows("async_lab_metric", "minute", h2, tail),
                    self._live_parts(channels, histograms, no_histograms, tail, SQL("<="), now),
                ]
            )

        columns = SQL("channel, at, done, failed, coarse, last_enqueued, %s", histograms)
        return SQL(
            """
            WITH known (names, depth, enqueued) AS (%(known)s),
            parts (%(columns)s) AS (%(parts)s),
            series_parts (%(columns)s) AS (%(series_parts)s),
            totals AS (
                SELECT channel, sum(done) AS done, sum(failed) AS failed, sum(coarse) AS coarse,
                       max(last_enqueued) AS enqueued, %(sums)s
                  FROM parts GROUP BY channel
            ),
            last_minute AS (
                SELECT channel, count(*) FILTER (WHERE state = 'done') AS done,
                       count(*) FILTER (WHERE state = 'failed') AS failed
                  FROM (SELECT channel, state FROM queue_job
                         WHERE state = 'done' AND channel = ANY(%(channels)s)
                           AND date_done >= %(last_minute)s AND date_done <= %(now)s
                         UNION ALL
                        SELECT channel, state FROM queue_job
                         WHERE state = 'failed' AND channel = ANY(%(channels)s) AND date_started >= %(last_minute)s
                           AND date_started <= %(now)s) AS recent
                 GROUP BY channel
            )
            SELECT (SELECT names FROM known), (SELECT depth FROM known),
                   (SELECT json_agg(json_build_array(t.channel, t.done, coalesce(l.done, 0), %(hist_t)s, t.coarse))
                      FROM totals AS t LEFT JOIN last_minute AS l USING (channel) WHERE t.done > 0),
                   (SELECT json_agg(json_build_array(t.channel, t.failed, coalesce(l.failed, 0)))
                      FROM totals AS t LEFT JOIN last_minute AS l USING (channel) WHERE t.failed > 0),
                   (SELECT json_agg(json_build_array(channel, point, done, failed))
                      FROM (SELECT channel,
                                   (date_part('epoch', date_bin(%(stride)s, at, %(first)s) - %(first)s)
                                    / %(seconds)s)::int AS point,
                                   sum(done) AS done, sum(failed) AS failed
                              FROM series_parts GROUP BY 1, 2) AS points),
                   (%(runners)s),
                   greatest((SELECT max(enqueued) FROM totals), (SELECT enqueued FROM known))
            """,
            known=self._channels_query(config_names),
            columns=columns,
            parts=parts(since, hours=True),
            series_parts=parts(first_point, hours=step >= 60),
            channels=channels,
            sums=SQL(", ").join(SQL("%s AS %s", histogram_sum(SQL.identifier(c)), SQL.identifier(c)) for c in hist),
            last_minute=now - timedelta(minutes=1),
            now=now,
            hist_t=SQL(", ").join(SQL("t.%s", SQL.identifier(c)) for c in hist),
            stride=timedelta(minutes=step),
            first=first_point,
            seconds=step * 60,
            runners=self._runners_query(),
        )

    @api.model
    def _live_parts(self, channels, histograms, no_histograms, lower, comparison, upper):
        """The done jobs (by the minute they ended) and failed jobs (by the minute they started) of ``[lower,
        upper)`` (``comparison`` "<") or ``[lower, upper]`` ("<="), as rows of the parts of
        :meth:`_rollup_stats_query`."""
        return SQL(
            """SELECT channel, minute, done, 0::bigint, coarse, last_enqueued, %(histograms)s FROM (%(done)s) AS d
                UNION ALL
               SELECT channel, date_trunc('minute', date_started), 0::bigint, count(*), 0::bigint, NULL::timestamp,
                      %(no_histograms)s
                 FROM queue_job
                WHERE state = 'failed' AND channel = ANY(%(channels)s)
                  AND date_started >= %(lower)s AND date_started %(comparison)s %(upper)s
                GROUP BY 1, 2""",
            histograms=histograms,
            done=done_by_minute(channels, SQL("date_done >= %s AND date_done %s %s", lower, comparison, upper)),
            no_histograms=no_histograms,
            channels=channels,
            lower=lower,
            comparison=comparison,
            upper=upper,
        )

    @api.model
    def _notify_dashboard(self, kind, payload=None):
        """Tell open dashboards that fresh figures exist (bus, after commit)."""
        self.env["bus.bus"]._sendone(self._dashboard_bus_channel(), "async_lab.refresh", dict(payload or {}, kind=kind))

    @api.model
    def _dashboard_bus_channel(self):
        """The dashboard's bus channel: the Async Lab / User group's record, scoped.

        Only users of that group are subscribed to it (``ir.websocket``), when
        their web client asks for DASHBOARD_CHANNEL: a portal or anonymous
        websocket asking for that string gets nothing.
        """
        return (self.env.ref(GROUP_USER).sudo(), DASHBOARD_CHANNEL)
