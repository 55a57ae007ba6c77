#!/usr/bin/env python3
# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""P3. Stats latency at 1,000,000 queue_job rows (P3c: 10,000,000): get_stats against the ORM.

Run it with the project's venv, after ``make bootstrap``::

    .venv/bin/python bench/bench_stats.py            # generate, measure
    .venv/bin/python bench/bench_stats.py --reuse    # measure the kept data again

1. A bench database on the server of ``.dev/odoo.conf`` (``--db``, default
   ``async_lab_bench_stats``) with async_lab installed, no demo data (an
   existing one is updated to this checkout unless ``--no-update``). Its
   ``queue_job`` table is filled with ``--rows`` generated rows in one SQL
   statement (``generate_series``, seeded): about 97% done, their
   ``date_done`` spread over the ``--days`` days before "now" (7 by default:
   a server doing about 140,000 jobs a day whose channels keep done jobs a
   week; queue_job's default removal interval is 30 days, which at 1M rows
   is a quieter server, about 33,000 jobs a day), 2% failed, 0.5% cancelled and a few hundred
   pending, enqueued and started jobs, across root, root.async_lab and its
   io, cpu and serial channels. queue_job's indexes are dropped during the
   insert and built again after it, then the table is ANALYZEd. The metrics
   rollups of the last 7 days (the longest window) are stored, as the
   every-minute cron would have.
   "Now" is the generation time, kept in the database (parameter
   ``async_lab.bench_stats_now``), so a reused database gives the same
   figures however old it is. Without ``--reuse`` the rows are generated
   again; ``--drop`` drops the database at the end.
2. In this process (a registry of the bench database, one cursor), for
   ``--runs`` rounds after one warm-up, it times alternately:

   STATS  ``env["async_lab.stats"].get_stats(window, now)``: the payload of
          the dashboard, the JSON routes and the exporter;
   ORM    the same figures the naive way, through the ORM (sudo): a
          ``read_group`` of the active jobs per channel x state, a
          ``read_group`` of the window's done jobs per channel and one of its
          failed jobs, and, since ``read_group`` has no percentiles, a
          ``search_read`` of the window's done (and failed) jobs' timestamps,
          with the latency percentiles, the last-minute counts and the
          per-minute series computed in Python.

   The ORM cache is cleared before every call. It checks that both give the
   same counts and series, and the same percentiles for the exact hour (for
   longer windows, read from the rollups, that the ORM's exact percentiles
   lie in get_stats's ``latency_bounds``), then prints p50/p95 of each, the
   ratio ORM / STATS of the medians, and the goals: p95 < 150 ms and >= 10x
   for the hour, p95 < 50 ms for the longer windows (P3c, at 10M rows).
   Every window of the dashboard is measured, or one with ``--window``.

   P3b, the same way: a Prometheus scrape (``async_lab.metrics.render()``,
   the whole body of ``GET /async_lab/metrics``) against a naive exporter
   that counts the jobs of queue_job at each scrape (by channel and state,
   and the stage histograms of every done job). It checks that the scrape's
   done counters equal the table's done jobs, and prints p50/p95 of each,
   the ratio naive / scrape and the goal: scrape p95 < 50 ms.
3. ``--explain`` also prints ``EXPLAIN (ANALYZE, BUFFERS)`` of the two
   statements of the function that ``get_stats`` calls.

It starts no server and writes nothing in the repository.
"""

# A benchmark script: it prints its figures on stdout.
# pylint: disable=print-used

import argparse
import math
import sys
import time
from array import array
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from psycopg2 import sql

# The integration tests' server helpers (tests/integration/odoo_server.py), shared by the benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from odoo_server import (
    add_database_options,
    bench_database,
    connect,
    db_params,
    drop_database,
    load_registry,
    run_bench,
)

GOAL_P95_MS = 150.0
GOAL_RATIO = 10.0
GOAL_SCRAPE_P95_MS = 50.0
#: Goal of the windows longer than an hour (from the rollups), at 10M rows.
GOAL_LONG_P95_MS = 50.0
#: The dashboard's ranges, in minutes: every one is measured by default.
WINDOWS = (60, 360, 1440, 10080)
#: Records per search_read of the ORM baseline.
ORM_BATCH = 50_000
#: Timed runs of the naive exporter (each reads the whole table).
NAIVE_RUNS = 5
NOW_PARAM = "async_lab.bench_stats_now"
ADMIN_UID = 2
MAX_WINDOW = 7 * 24 * 60  # async_lab.stats's longest window, in minutes
#: (channel, share of the jobs, typical run time in seconds)
CHANNEL_MIX = [
    ("root", 0.10, 0.2),
    ("root.async_lab", 0.15, 0.5),
    ("root.async_lab.io", 0.40, 0.3),
    ("root.async_lab.cpu", 0.25, 2.0),
    ("root.async_lab.serial", 0.10, 0.1),
]
EXACT_WINDOW = 60  # async_lab.stats's longest exact window
ACTIVE = {"pending": 200, "enqueued": 60, "started": 40}
FAILED_SHARE = 0.02
CANCELLED_SHARE = 0.005


# -- database -------------------------------------------------------------------------
def generated(cr):
    """(now, physical order, days) of the generated rows, or (None, None, None)."""
    cr.execute("SELECT value FROM ir_config_parameter WHERE key = %s", [NOW_PARAM])
    row = cr.fetchone()
    if not row:
        return None, None, None
    now, order, *days = row[0].split(" ")
    return datetime.fromisoformat(now), order, int(days[0]) if days else 7


def generate(params, db, rows, order, days):
    """Fill queue_job with ``rows`` generated jobs; return the "now" they are relative to.

    With ``order`` "time" the rows are stored in the order of their creation,
    as a live table roughly is, so the jobs of one hour share few pages;
    "random" scatters them over the whole table (a worst case).
    """
    conn = connect(params, db)
    cr = conn.cursor()
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    started = time.monotonic()
    print("generating %d queue_job rows in %s over %d days (physical order: %s)" % (rows, db, days, order), flush=True)
    cr.execute("SELECT id FROM queue_job_function WHERE name = '<queue.job>._test_job'")
    function_id = cr.fetchone()[0]
    cr.execute(
        """SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x
             JOIN pg_class i ON i.oid = x.indexrelid
            WHERE x.indrelid = 'queue_job'::regclass AND NOT x.indisprimary"""
    )
    indexes = cr.fetchall()
    conn.autocommit = False
    cr.execute("TRUNCATE queue_job CASCADE")
    cr.execute("DELETE FROM async_lab_metric")
    # The metrics' counting triggers would add the rows one by one: they are
    # counted at once afterwards instead, as at the install (main()).
    cr.execute("ALTER TABLE queue_job DISABLE TRIGGER USER")
    for name, _definition in indexes:
        cr.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    # Channel thresholds: a job whose random draw ``c`` is below the cumulated
    # share of a channel goes to that channel.
    bounds, total = [], 0.0
    for channel, share, run in CHANNEL_MIX:
        total += share
        bounds.append((channel, total, run))
    channel_case = " ".join("WHEN c < %s THEN '%s'" % (b, ch) for ch, b, _r in bounds[:-1])
    run_case = " ".join("WHEN c < %s THEN %s" % (b, r) for _ch, b, r in bounds[:-1])
    n_active = sum(ACTIVE.values())
    n_failed = int(rows * FAILED_SHARE)
    n_cancelled = int(rows * CANCELLED_SHARE)
    state_case = (
        "CASE WHEN i <= %(p)d THEN 'pending' WHEN i <= %(e)d THEN 'enqueued' WHEN i <= %(s)d THEN 'started' "
        "WHEN i <= %(f)d THEN 'failed' WHEN i <= %(c)d THEN 'cancelled' ELSE 'done' END"
        % {
            "p": ACTIVE["pending"],
            "e": ACTIVE["pending"] + ACTIVE["enqueued"],
            "s": n_active,
            "f": n_active + n_failed,
            "c": n_active + n_failed + n_cancelled,
        }
    )
    cr.execute("SELECT setseed(0.42)")
    cr.execute(
        """
        INSERT INTO queue_job (uuid, user_id, company_id, priority, retry, max_retries, job_function_id,
                               worker_pid, name, model_name, method_name, func_string, state, exc_name,
                               exc_message, channel_method_name, channel, records, args, kwargs, result,
                               date_created, date_enqueued, date_started, date_done, date_cancelled, exec_time)
        SELECT md5(i::text || 'async_lab_bench'), %(uid)s, 1, 10, CASE WHEN state = 'failed' THEN 5 ELSE 0 END, 5,
               %(function_id)s, CASE WHEN state IN ('started', 'done', 'failed') THEN 10000 + i %% 8 END,
               'queue.job._test_job', 'queue.job', '_test_job', 'queue.job()._test_job()', state,
               CASE WHEN state = 'failed' THEN 'odoo.addons.async_lab.lib.workloads.WorkloadFailure' END,
               CASE WHEN state = 'failed' THEN 'the ''fail'' workload always fails, on purpose' END,
               '<queue.job>._test_job', channel,
               '{"_type": "odoo_recordset", "model": "queue.job", "ids": [], "uid": 2, "su": false}', '[]', '{}',
               CASE WHEN state = 'done' THEN 'None' END,
               at - run - start_wait - wait,
               CASE WHEN state <> 'pending' THEN at - run - start_wait END,
               CASE WHEN state IN ('started', 'done', 'failed') THEN at - run END,
               CASE WHEN state = 'done' THEN at END,
               CASE WHEN state = 'cancelled' THEN at END,
               CASE WHEN state = 'done' THEN extract(epoch FROM run) END
          FROM (
            SELECT i, state, channel,
                   -- active jobs are recent; the others are spread over the last days
                   CASE WHEN state IN ('pending', 'enqueued', 'started')
                        THEN %(now)s - random() * interval '5 minutes'
                        ELSE %(now)s - random() * make_interval(days => %(days)s) END AS at,
                   -- run time: skewed, a multiple of the channel's typical run time
                   make_interval(secs => typical * (0.2 + 3 * power(random(), 3))) AS run,
                   make_interval(secs => 0.01 + 0.05 * random()) AS start_wait,
                   make_interval(secs => CASE WHEN random() < 0.9 THEN 0.05 + 0.5 * random()
                                              ELSE 5 + 60 * random() END) AS wait
              FROM (
                SELECT i, """
        + state_case
        + """ AS state,
                       CASE """
        + channel_case
        + """ ELSE '"""
        + bounds[-1][0]
        + """' END AS channel,
                       CASE """
        + run_case
        + """ ELSE """
        + str(bounds[-1][2])
        + """ END AS typical
                  FROM (SELECT i, random() AS c FROM generate_series(1, %(rows)s) AS i) AS draws
              ) AS jobs
          ) AS timed
         """
        + ("ORDER BY at - run - start_wait - wait" if order == "time" else "ORDER BY md5(i::text)")
        + """
        """,
        {"uid": ADMIN_UID, "function_id": function_id, "now": now, "rows": rows, "days": days},
    )
    cr.execute("ALTER TABLE queue_job ENABLE TRIGGER USER")
    cr.execute("DELETE FROM async_lab_job_counter")
    print("  inserted in %.0f s; building %d indexes" % (time.monotonic() - started, len(indexes)), flush=True)
    for _name, definition in indexes:
        cr.execute(definition)
    cr.execute(
        """INSERT INTO ir_config_parameter (key, value, create_uid, write_uid, create_date, write_date)
           VALUES (%s, %s, 1, 1, %s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""",
        [NOW_PARAM, "%s %s %d" % (now.isoformat(), order, days), now, now],
    )
    conn.commit()
    conn.autocommit = True
    cr.execute("VACUUM ANALYZE queue_job")
    conn.close()
    print("  done in %.0f s" % (time.monotonic() - started), flush=True)
    return now


# -- the naive ORM baseline -----------------------------------------------------------------
def percentile_cont(values, fraction):
    """PostgreSQL's percentile_cont on a sorted list (linear interpolation)."""
    if not values:
        return None
    pos = fraction * (len(values) - 1)
    low, high = math.floor(pos), math.ceil(pos)
    return values[low] + (values[high] - values[low]) * (pos - low)


def orm_stats(env, window, now, step=1):
    """The figures of get_stats, computed the naive way with the ORM.

    The window's jobs are read in batches of :data:`ORM_BATCH` (a week at
    10M rows would not fit in memory at once); the series counts every
    ``step`` minutes, as get_stats's does.
    """
    from odoo.addons.async_lab.models.async_lab_metric import minute_floor
    from odoo.addons.async_lab.models.async_lab_stats import STAGES, step_floor
    from odoo.addons.async_lab.models.queue_job import ACTIVE_STATES

    Stats = env["async_lab.stats"]
    Job = env["queue.job"].sudo()
    since = now - timedelta(minutes=window)
    last_minute = now - timedelta(minutes=1)
    config_text, config = Stats._channel_config()
    names = Stats._known_channels()
    channels = {
        name: {
            "name": name,
            "capacity": config.get(name, {}).get("capacity"),
            **{state: 0 for state in ACTIVE_STATES},
            "done": 0,
            "failed": 0,
            "done_last_minute": 0,
            "failed_last_minute": 0,
            "latency": {},
            "rank_values": {},
        }
        for name in names
    }
    for group in Job.read_group([("state", "in", ACTIVE_STATES)], ["channel"], ["channel", "state"], lazy=False):
        if group["channel"] in channels:
            channels[group["channel"]][group["state"]] = group["__count"]
    done_domain = [("channel", "in", names), ("date_done", ">=", since), ("date_done", "<=", now)]
    for group in Job.read_group(done_domain, ["channel"], ["channel"]):
        channels[group["channel"]]["done"] = group["channel_count"]
    failed_domain = [("state", "=", "failed"), ("channel", "in", names), ("date_started", ">=", since)]
    for group in Job.read_group(failed_domain, ["channel"], ["channel"]):
        channels[group["channel"]]["failed"] = group["channel_count"]
    # read_group has no percentiles: fetch the timestamps, from the start of
    # the window's first point (the series counts whole steps).
    series_start = step_floor(minute_floor(since), step)
    durations = defaultdict(lambda: {stage: array("d") for stage in STAGES})
    series = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    fields = ["channel", "date_created", "date_enqueued", "date_started", "date_done"]
    for job in batched_search_read(
        Job, [("channel", "in", names), ("date_done", ">=", series_start), ("date_done", "<=", now)], fields
    ):
        series[job["channel"]][step_floor(job["date_done"], step)][0] += 1
        if job["date_done"] < since:
            continue
        stages = durations[job["channel"]]
        stages["created_enqueued"].append((job["date_enqueued"] - job["date_created"]).total_seconds())
        stages["enqueued_started"].append((job["date_started"] - job["date_enqueued"]).total_seconds())
        stages["started_done"].append((job["date_done"] - job["date_started"]).total_seconds())
        if job["date_done"] >= last_minute:
            channels[job["channel"]]["done_last_minute"] += 1
    failed_recent = [("state", "=", "failed"), ("channel", "in", names), ("date_started", ">=", series_start)]
    for job in batched_search_read(Job, failed_recent, ["channel", "date_started"]):
        if job["date_started"] >= last_minute:
            channels[job["channel"]]["failed_last_minute"] += 1
        series[job["channel"]][step_floor(job["date_started"], step)][1] += 1
    for name, stages in durations.items():
        for stage, values in stages.items():
            values = sorted(values)
            channels[name]["latency"][stage] = {
                "p50": round(percentile_cont(values, 0.5), 4),
                "p95": round(percentile_cont(values, 0.95), 4),
            }
            # The value of rank ceil(q * n): the one a histogram's bucket holds.
            channels[name]["rank_values"][stage] = {
                q: values[max(math.ceil(fraction * len(values)), 1) - 1]
                for q, fraction in (("p50", 0.5), ("p95", 0.95))
            }
    runners = (
        env["async_lab.worker"]
        .sudo()
        .search_read(
            [("role", "=", "jobrunner"), ("state", "=", "alive")], ["pid", "host", "last_seen"], order="last_seen desc"
        )
    )
    return {"channels": list(channels.values()), "series": series, "runners": runners, "config": config_text}


def batched_search_read(model, domain, fields):
    """``search_read`` of ``domain`` in batches of :data:`ORM_BATCH` records, by id, cache cleared between."""
    last_id = 0
    while True:
        batch = model.search_read(domain + [("id", ">", last_id)], fields, order="id", limit=ORM_BATCH)
        yield from batch
        if len(batch) < ORM_BATCH:
            return
        last_id = batch[-1]["id"]
        model.env.invalidate_all()


# -- checking and timing ---------------------------------------------------------------------
COUNT_KEYS = (
    "pending",
    "enqueued",
    "started",
    "wait_dependencies",
    "done",
    "failed",
    "done_last_minute",
    "failed_last_minute",
)


def compare(stats, orm):
    """Differences between the two payloads' counts and percentiles (empty: same)."""
    problems = []
    by_name = {c["name"]: c for c in orm["channels"]}
    if set(by_name) != {c["name"] for c in stats["channels"]}:
        problems.append("channels differ: %s vs %s" % (sorted(by_name), sorted(c["name"] for c in stats["channels"])))
    for row in stats["channels"]:
        other = by_name.get(row["name"], {})
        for key in COUNT_KEYS:
            if row[key] != other.get(key):
                problems.append("%s %s: stats %s, ORM %s" % (row["name"], key, row[key], other.get(key)))
        for stage, values in row["latency"].items():
            for q, value in values.items():
                theirs = other.get("latency", {}).get(stage, {}).get(q)
                if stats["latency_method"] == "histogram":
                    # The bounds hold the value of rank ceil(q * n) (metrics.histogram_quantile).
                    bounds = row["latency_bounds"][stage][q]
                    ranked = other.get("rank_values", {}).get(stage, {}).get(q)
                    if bounds is None or ranked is None:
                        if (bounds is None) != (ranked is None):
                            problems.append("%s %s %s: stats %s, ORM %s" % (row["name"], stage, q, bounds, ranked))
                    elif not (bounds[0] <= ranked and (bounds[1] is None or ranked <= bounds[1])):
                        problems.append(
                            "%s %s %s: ORM value %s outside the bounds %s" % (row["name"], stage, q, ranked, bounds)
                        )
                elif value is not None and (theirs is None or abs(value - theirs) > 1e-3):
                    problems.append("%s %s %s: stats %s, ORM %s" % (row["name"], stage, q, value, theirs))
    for name, data in stats["series"]["channels"].items():
        points = [datetime.fromisoformat(m.rstrip("Z")) for m in stats["series"]["minutes"]]
        mine = [(data["done"][i], data["failed"][i]) for i in range(len(points))]
        theirs = [tuple(orm["series"].get(name, {}).get(m, (0, 0))) for m in points]
        if mine != theirs:
            problems.append("%s series differ" % name)
    return problems


def quantile(values, fraction):
    return percentile_cont(sorted(values), fraction)


def explain(env, window, now):
    """EXPLAIN (ANALYZE, BUFFERS) of the statements get_stats runs.

    Its one query, a call of the stats function, would show as a mere
    function scan: its two statements are explained instead, as the
    function runs them (generic plans, no JIT), with the call's arguments.
    """
    from odoo.tools import SQL

    from odoo.addons.async_lab.models.async_lab_metric import minute_floor

    cr = env.cr
    Stats = env["async_lab.stats"]
    config = list(Stats._channel_config()[1])
    since = now - timedelta(minutes=window)
    statements = [
        ("the channels and their depth", Stats._channels_query(SQL("$1")), ["text[]"], [config]),
        (
            "the window",
            Stats._stats_query(*map(SQL, ("$1", "$2", "$3", "$4", "$5"))),
            ["text[]"] + ["timestamp"] * 4,
            [Stats._known_channels(), since, now, minute_floor(since), now - timedelta(minutes=1)],
        ),
    ]
    cr.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    cr.execute("SET LOCAL jit = off")
    for title, statement, types, args in statements:
        cr.execute(SQL("PREPARE async_lab_explain (%s) AS %s", SQL(", ".join(types)), statement))
        cr.execute(SQL("EXPLAIN (ANALYZE, BUFFERS) EXECUTE async_lab_explain (%s)", SQL(", ").join(args)))
        print("\n%s (generic plan, as the stats function runs it):" % title)
        print("\n".join("    " + row[0] for row in cr.fetchall()))
        cr.execute("DEALLOCATE async_lab_explain")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Latency of async_lab.stats.get_stats at 1M queue_job rows vs the same figures through "
        "ORM read_group/search_read. Goals: p95 < %d ms and >= %dx." % (GOAL_P95_MS, GOAL_RATIO),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_database_options(parser, "async_lab_bench_stats")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the rows generated by a previous run instead of generating them again",
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="queue_job rows to generate")
    parser.add_argument(
        "--order",
        choices=("time", "random"),
        default="time",
        help="physical order of the generated rows: creation time (like a live table) or random "
        "(the jobs of one hour scattered over the whole table: a worst case)",
    )
    parser.add_argument(
        "--days", type=int, default=7, help="days the generated done jobs are spread over (the load: rows / days a day)"
    )
    parser.add_argument(
        "--windows",
        type=lambda text: [int(w) for w in text.split(",")],
        default=list(WINDOWS),
        help="stats windows, in minutes, comma-separated (the dashboard's ranges by default)",
    )
    parser.add_argument("--window", type=int, help="one stats window, in minutes (instead of --windows)")
    parser.add_argument("--runs", type=int, default=30, help="timed calls of each side")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of get_stats's queries")
    args = parser.parse_args(argv)
    if not 1000 <= args.rows <= 20_000_000:
        parser.error("--rows must be between 1000 and 20000000")
    if args.window:
        args.windows = [args.window]
    if not 1 <= args.runs <= 1000 or not all(1 <= w <= MAX_WINDOW for w in args.windows) or not 2 <= args.days <= 365:
        parser.error("--runs must be in 1..1000, windows in 1..%d and --days in 2..365" % MAX_WINDOW)
    if not args.conf.exists():
        parser.error("no Odoo config at %s: run `make bootstrap` first" % args.conf)
    return args


def main(argv=None):
    args = parse_args(argv)
    params = db_params(args.conf)
    bench_database(args.conf, params, args.db, args.update)
    conn = connect(params, args.db)
    with conn.cursor() as cr:
        now, order, days = generated(cr)
        cr.execute("SELECT count(*) FROM queue_job")
        count = cr.fetchone()[0]
    conn.close()
    if not (args.reuse and now and count == args.rows and order == args.order and days == args.days):
        if args.reuse:
            print(
                "nothing to reuse in %s (%d rows in %s order over %s days, wanted %d in %s order over %d days): "
                "generating" % (args.db, count, order, days, args.rows, args.order, args.days)
            )
        now = generate(params, args.db, args.rows, args.order, args.days)
        count = args.rows
    registry = None
    try:
        registry = load_registry(args.conf, args.db)
        from odoo import api

        with registry.cursor() as cr:
            cr.execute("SELECT count(*) FROM async_lab_job_counter")
            if not cr.fetchone()[0]:
                t0 = time.perf_counter()
                api.Environment(cr, ADMIN_UID, {})["async_lab.metrics"]._seed_job_counter(cr)
                print(
                    "metrics counters started from the generated jobs in %.1f s (as at the install)"
                    % (time.perf_counter() - t0)
                )
        rolled_days = min(days, MAX_WINDOW // 1440)
        if not generated_now_rolled_up(registry, now, rolled_days):
            # What the every-minute cron would have stored over the longest
            # window: a first rollup stores one hour, the next everything since.
            with registry.cursor() as cr:
                env = api.Environment(cr, ADMIN_UID, {})
                Metric = env["async_lab.metric"]
                cr.execute("DELETE FROM async_lab_metric")
                t0 = time.perf_counter()
                first = now - timedelta(days=rolled_days) + timedelta(minutes=61)
                buckets = Metric._rollup(now=first) + Metric._rollup(now=now)
                print(
                    "metrics rollup of the %d days before now: %d minute buckets in %.0f s"
                    % (rolled_days, buckets, time.perf_counter() - t0)
                )
        problems = []
        timings = {}
        with registry.cursor() as cr:
            env = api.Environment(cr, ADMIN_UID, {})
            cr.execute("SELECT state, count(*) FROM queue_job GROUP BY 1 ORDER BY 2 DESC")
            print(
                "%s: %d queue_job rows (%s) over %d days, in %s order; now = %s"
                % (args.db, count, ", ".join("%s %d" % row for row in cr.fetchall()), days, args.order, now)
            )
            Stats = env["async_lab.stats"]
            for window in args.windows:
                problems += measure_window(env, Stats, window, now, args, timings)
            # P3b: a Prometheus scrape (GET /async_lab/metrics's whole body)
            # against a naive exporter that counts queue_job at each scrape.
            Metrics = env["async_lab.metrics"]
            body = Metrics.render().decode()  # warm-up
            check_scrape(cr, body)
            timings.update(metrics=[], naive=[])
            for index in range(args.runs):
                for side in ("metrics", "naive"):
                    if side == "naive" and index >= NAIVE_RUNS:
                        continue
                    env.invalidate_all()
                    t0 = time.perf_counter()
                    Metrics.render() if side == "metrics" else naive_scrape(cr)
                    timings[side].append(1000 * (time.perf_counter() - t0))
            cr.rollback()
        figures = {side: (quantile(t, 0.5), quantile(t, 0.95), min(t), max(t), len(t)) for side, t in timings.items()}
        print("\n%-14s %8s %8s %8s %8s %5s   (ms)" % ("side", "p50", "p95", "min", "max", "runs"))
        for side, (p50, p95, low, high, runs) in figures.items():
            print("%-14s %8.1f %8.1f %8.1f %8.1f %5d" % (side, p50, p95, low, high, runs))
        print()
        for window in args.windows:
            stats, orm = figures["stats %d" % window], figures["orm %d" % window]
            goal = GOAL_P95_MS if window <= EXACT_WINDOW else GOAL_LONG_P95_MS
            ratio = orm[0] / stats[0]
            print(
                "window %5d min: get_stats p50 %.1f / p95 %.1f ms, goal p95 < %d ms: %s;"
                " RATIO ORM/stats (medians) %.1fx%s"
                % (
                    window,
                    stats[0],
                    stats[1],
                    goal,
                    "met" if stats[1] < goal else "NOT met",
                    ratio,
                    ", goal >= %dx: %s" % (GOAL_RATIO, "met" if ratio >= GOAL_RATIO else "NOT met")
                    if window <= EXACT_WINDOW
                    else "",
                )
            )
        scrape_p95 = figures["metrics"][1]
        print(
            "metrics scrape p95 %.1f ms, goal < %d ms: %s"
            % (scrape_p95, GOAL_SCRAPE_P95_MS, "met" if scrape_p95 < GOAL_SCRAPE_P95_MS else "NOT met")
        )
        print("RATIO naive/metrics (medians): %.1fx" % (figures["naive"][0] / figures["metrics"][0]))
        return 1 if problems else 0
    finally:
        if registry is not None:
            registry.delete(args.db)
        if args.drop:
            drop_database(params, args.db)


def measure_window(env, Stats, window, now, args, timings):
    """Check get_stats against the ORM over ``window``, then time both into ``timings``; return the problems."""
    from odoo.addons.async_lab.models.async_lab_stats import series_step

    step = series_step(window)
    stats = Stats.get_stats(window, now=now)  # warm-up
    env.invalidate_all()
    t0 = time.perf_counter()
    orm = orm_stats(env, window, now, step)
    first_orm = time.perf_counter() - t0
    problems = compare(stats, orm)
    stats = Stats.get_stats(window, now=now)
    print(
        "\nwindow %d min (%s, series step %d min): %d done jobs, %d failed, %d active"
        % (
            window,
            stats["latency_method"],
            step,
            stats["totals"]["done_window"],
            stats["totals"]["failed_window"],
            sum(stats["totals"][s] for s in ("pending", "enqueued", "started", "wait_dependencies")),
        )
    )
    if problems:
        print("MISMATCH between get_stats and the ORM baseline:\n  " + "\n  ".join(problems))
    elif stats["latency_method"] == "histogram":
        print("check: same counts and series as the ORM baseline; its percentiles lie in get_stats's latency_bounds")
    else:
        print("check: get_stats and the ORM baseline give the same counts, percentiles and series")
    # The ORM side reads every job of the window: as many runs as fit in
    # about the time of --runs runs of an hour's window.
    # A single run is the check's own (minutes at a week of 10M jobs).
    orm_runs = max(1, min(args.runs, int(args.runs * 60 / window)))
    stats_times, orm_times = timings.setdefault("stats %d" % window, []), timings.setdefault("orm %d" % window, [])
    if orm_runs == 1:
        orm_times.append(1000 * first_orm)
    for index in range(args.runs):
        for side in ("stats", "orm"):
            if side == "orm" and (orm_runs == 1 or index >= orm_runs):
                continue
            env.invalidate_all()
            t0 = time.perf_counter()
            if side == "stats":
                Stats.get_stats(window, now=now)
            else:
                orm_stats(env, window, now, step)
            (stats_times if side == "stats" else orm_times).append(1000 * (time.perf_counter() - t0))
    print(
        "  timed: %d get_stats runs, p50 %.1f / p95 %.1f ms; %d ORM runs, p50 %.1f ms (the first took %.1f s)"
        % (
            args.runs,
            quantile(stats_times, 0.5),
            quantile(stats_times, 0.95),
            len(orm_times),
            quantile(orm_times, 0.5),
            first_orm,
        ),
        flush=True,
    )
    if args.explain and window <= EXACT_WINDOW:
        explain(env, window, now)
    return problems


def naive_scrape(cr):
    """What an exporter without counters would read at each scrape: every job of queue_job."""
    from odoo.tools import SQL

    from odoo.addons.async_lab.models.queue_job import DONE_STAGES

    cr.execute("SELECT channel, state, count(*) FROM queue_job GROUP BY 1, 2")
    rows = cr.fetchall()
    for expression in DONE_STAGES.values():
        cr.execute(
            SQL(
                "SELECT channel, async_lab_stage_bucket(s), count(*), sum(s)"
                " FROM (SELECT channel, %s AS s FROM queue_job WHERE state = 'done') AS d"
                " WHERE s IS NOT NULL GROUP BY 1, 2",
                SQL(expression),
            )
        )
        rows += cr.fetchall()
    return rows


def check_scrape(cr, body):
    """The scrape's done counters are the table's done jobs, channel by channel (none deleted since)."""
    from prometheus_client.parser import text_string_to_metric_families

    scraped = {
        sample.labels["channel"]: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "async_lab_jobs_done_total"
    }
    cr.execute("SELECT channel, count(*) FROM queue_job WHERE state = 'done' GROUP BY 1")
    for channel, count in cr.fetchall():
        if scraped.get(channel) != count:
            raise SystemExit("the scrape's counter of %s is %s, not %d" % (channel, scraped.get(channel), count))
    print("check: the scrape's done counters equal queue_job's done jobs; scrape body %d bytes" % len(body))


def generated_now_rolled_up(registry, now, days):
    """Whether the metrics of the ``days`` before ``now`` are stored already, up to its last minute."""
    with registry.cursor() as cr:
        cr.execute("SELECT min(minute), max(minute) FROM async_lab_metric")
        first, last = cr.fetchone()
        return bool(
            last == now.replace(second=0) - timedelta(minutes=1) and first <= now - timedelta(days=days, minutes=-65)
        )


if __name__ == "__main__":
    run_bench(main)
