# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging
import math
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta

from odoo.exceptions import AccessError
from odoo.modules.module import get_manifest
from odoo.tests import HttpCase, tagged
from odoo.tools import SQL
from odoo.tools.sql import index_exists

from ..hooks import uninstall_hook
from ..models import async_lab_stats
from ..models.async_lab_metric import HOUR_TABLE, RAW_COLUMNS, ROLLUP_TABLE
from ..models.async_lab_stats import (
    STATS_FUNCTION,
    STATS_FUNCTION_LOCK,
    create_stats_function,
    series_step,
    step_floor,
    utcnow,
)
from ..models.queue_job import DONE_INDEX, FAILED_INDEX
from .common import AsyncLabCase, assert_doctests, at, now_minute

IO = "root.async_lab.io"
CPU = "root.async_lab.cpu"


@tagged("at_install", "-post_install")
class TestStats(AsyncLabCase):
    """get_stats and the rollup against hand-built jobs with known timestamps."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.cr.execute("DELETE FROM queue_job")
        cls.Stats = cls.env["async_lab.stats"]
        cls.now = now_minute() + timedelta(seconds=30)
        base = cls.now - timedelta(minutes=10)
        # Four done I/O jobs: created->enqueued 1..4 s, enqueued->started 10..40 s, run 2..8 s.
        for i in range(1, 5):
            created = at(base, i * 60)
            cls.insert_job(
                cls,
                IO,
                created=created,
                enqueued=at(created, i),
                started=at(created, i + 10 * i),
                done=at(created, i + 10 * i + 2 * i),
                worker_pid=100 + i % 2,
            )
        # Outside the window (2 hours ago): ignored.
        old = cls.now - timedelta(hours=2)
        cls.insert_job(cls, IO, created=old, enqueued=old, started=old, done=at(old, 1))
        # Active jobs (queue depth) and a failed one.
        cls.insert_job(cls, IO, state="pending", created=base)
        cls.insert_job(cls, IO, state="pending", created=base)
        cls.insert_job(cls, CPU, state="enqueued", created=base, enqueued=at(base, 1))
        cls.insert_job(cls, CPU, state="started", created=base, enqueued=at(base, 1), started=at(base, 2))
        cls.insert_job(cls, CPU, state="failed", created=base, enqueued=at(base, 1), started=at(base, 3))

    def channel(self, stats, name):
        (row,) = [c for c in stats["channels"] if c["name"] == name]
        return row

    def test_counts_and_depth(self):
        stats = self.Stats.get_stats(window=60, now=self.now)
        io, cpu = self.channel(stats, IO), self.channel(stats, CPU)
        self.assertEqual((io["done"], io["pending"], io["enqueued"], io["failed"]), (4, 2, 0, 0))
        self.assertEqual((cpu["done"], cpu["enqueued"], cpu["started"], cpu["failed"]), (0, 1, 1, 1))
        self.assertEqual(io["throughput_per_minute"], round(4 / 60, 2))
        self.assertEqual(stats["totals"]["done_window"], 4)
        self.assertEqual(stats["totals"]["failed_window"], 1)
        self.assertEqual(stats["totals"]["pending"], 2)

    def test_exact_percentiles_by_stage(self):
        io = self.channel(self.Stats.get_stats(window=60, now=self.now), IO)
        # percentile_cont over 1,2,3,4: p50 = 2.5, p95 = 3 + 0.85 = 3.85
        self.assertEqual(io["latency"]["created_enqueued"], {"p50": 2.5, "p95": 3.85})
        self.assertEqual(io["latency"]["enqueued_started"], {"p50": 25.0, "p95": 38.5})
        self.assertEqual(io["latency"]["started_done"], {"p50": 5.0, "p95": 7.7})

    def test_window_excludes_old_jobs(self):
        stats = self.Stats.get_stats(window=180, now=self.now)
        self.assertEqual(self.channel(stats, IO)["done"], 5)

    def test_capacity_comes_from_the_runner_config(self):
        stats = self.Stats.get_stats(now=self.now)
        text = stats["runner"]["channels_config"]
        self.assertTrue(text)
        configured = {c["name"]: c["capacity"] for c in stats["channels"] if c["configured"]}
        self.assertIn("root", configured)

    def test_rollup_buckets_match_the_live_series(self):
        live = self.Stats.get_stats(window=60, now=self.now)["series"]
        count = self.env["async_lab.metric"]._rollup(now=self.now)
        self.assertEqual(count, 5, "4 minutes with a done job, 1 with a failure")
        stored = self.Stats.get_stats(window=60, now=self.now)["series"]
        self.assertEqual(live, stored)
        self.assertEqual(sum(stored["channels"][IO]["done"]), 4)
        self.assertEqual(sum(stored["channels"][CPU]["failed"]), 1)
        bucket = self.env["async_lab.metric"].search([("channel", "=", IO)], order="minute", limit=1)
        self.assertEqual((bucket.done, bucket.wait_p50, bucket.run_p50), (1, 11.0, 2.0))
        # Rolling up again changes none of them (idempotent upsert), and
        # stores a span of the backlog: the job done two hours ago.
        self.env["async_lab.metric"]._rollup(now=self.now)
        self.assertEqual(self.Stats.get_stats(window=60, now=self.now)["series"], stored)
        self.assertEqual(self.env["async_lab.metric"].search_count([]), 6)

    def test_stats_need_the_user_group(self):
        outsider = self.env["res.users"].create({"name": "Outsider", "login": "async_lab_outsider"})
        with self.assertRaises(AccessError):
            self.Stats.with_user(outsider).get_stats(now=self.now)
        self.assertTrue(self.Stats.with_user(self.user).get_stats(now=self.now)["channels"])

    def test_prune(self):
        self.env["async_lab.metric"]._rollup(now=self.now)
        self.env["async_lab.metric"]._cron_prune(now=self.now + timedelta(days=30))
        self.assertFalse(self.env["async_lab.metric"].search([]))

    def test_stats_are_sql_aggregates(self):
        # The same number of queries, whatever the number of jobs: Python
        # reads no job, PostgreSQL aggregates them.
        self.Stats.get_stats(now=self.now)  # the first call of a registry checks the function exists

        def queries():
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            self.Stats.get_stats(now=self.now)
            return self.env.cr.sql_log_count - before

        few = queries()
        for i in range(30):
            start = self.now - timedelta(minutes=5)
            self.insert_job(IO, created=start, enqueued=start, started=start, done=at(start, i))
        self.assertEqual(queries(), few)
        self.assertEqual(few, 1, "one call of the stats function")

    def test_jobs_without_a_stage_timestamp_leave_its_percentiles_empty(self):
        # A job can end without ever being enqueued by the runner (run by hand).
        start = self.now - timedelta(minutes=5)
        self.insert_job("root.async_lab.serial", created=start, enqueued=None, started=at(start, 1), done=at(start, 3))
        row = self.channel(self.Stats.get_stats(window=60, now=self.now), "root.async_lab.serial")
        self.assertEqual(row["done"], 1)
        self.assertEqual(row["latency"]["created_enqueued"], {"p50": None, "p95": None})
        self.assertEqual(row["latency"]["started_done"], {"p50": 2.0, "p95": 2.0})

    def test_no_stage_is_below_zero(self):
        # queue_job's runner stores date_enqueued truncated to the second: a
        # job created at .700 and enqueued in the same second reads enqueued
        # 0.7 s before it was created. The stage is 0, the next one not longer
        # than the job lived.
        start = self.now.replace(second=0) - timedelta(minutes=5)
        created = start + timedelta(microseconds=700_000)
        self.insert_job(
            "root.async_lab.serial", created=created, enqueued=start, started=at(created, 0.2), done=at(created, 1.2)
        )
        row = self.channel(self.Stats.get_stats(window=60, now=self.now), "root.async_lab.serial")
        self.assertEqual(row["latency"]["created_enqueued"], {"p50": 0.0, "p95": 0.0})
        self.assertEqual(row["latency"]["enqueued_started"], {"p50": 0.2, "p95": 0.2})
        self.assertEqual(row["latency"]["started_done"], {"p50": 1.0, "p95": 1.0})
        self.assertEqual(
            row["latency_resolution"],
            {
                "created_enqueued": 1.0,
                "enqueued_started": 1.0,
                "started_done": 1e-06,
            },
        )
        # An enqueue instant that async_lab recorded is used to the microsecond
        # (and one outside created..started is brought back inside).
        serial = "root.async_lab.serial"
        self.env.cr.execute("DELETE FROM queue_job WHERE channel = %s", [serial])
        for received in (0.25, 0.75):
            self.insert_job(
                serial,
                created=created,
                enqueued=start,
                started=at(created, 0.5),
                done=at(created, 1),
                async_lab_date_received=at(created, received),
            )
        row = self.channel(self.Stats.get_stats(window=60, now=self.now), serial)
        self.assertEqual(row["latency"]["created_enqueued"], {"p50": 0.375, "p95": 0.4875})
        self.assertEqual(row["latency"]["enqueued_started"], {"p50": 0.125, "p95": 0.2375})
        self.assertEqual(row["latency_resolution"], dict.fromkeys(row["latency"], 1e-06))

    def stats_functions(self):
        self.env.cr.execute("SELECT proname FROM pg_proc WHERE starts_with(proname, %s)", [STATS_FUNCTION])
        return [row[0] for row in self.env.cr.fetchall()]

    def database_objects(self):
        """Which of the indexes, the function and the rollups' tables async_lab adds exist."""
        indexes = [index_exists(self.env.cr, DONE_INDEX), index_exists(self.env.cr, FAILED_INDEX)]
        self.env.cr.execute(
            "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL", [HOUR_TABLE, ROLLUP_TABLE]
        )
        tables = self.env.cr.fetchone()[0]
        return [*indexes, self.stats_functions() == [self.Stats._stats_function()[0]], tables]

    def test_code_without_its_stats_function_creates_it(self):
        name = self.Stats._stats_function()[0]
        other = STATS_FUNCTION + "0" * 12
        self.assertEqual(self.stats_functions(), [name], "init made the function of this code, and no other")
        expected = self.Stats.get_stats(window=60, now=self.now)
        try:
            with self.env.cr.savepoint(flush=False) as savepoint:
                # Code changed without an update: the database has another version only.
                self.env.cr.execute(SQL("ALTER FUNCTION %s RENAME TO %s", SQL.identifier(name), SQL.identifier(other)))
                self.env.registry.clear_cache()  # a new registry: the code restarted
                with self.assertLogs("odoo.addons.async_lab.models.async_lab_stats", logging.INFO) as logs:
                    self.assertEqual(self.Stats.get_stats(window=60, now=self.now), expected)
                self.assertIn(name, logs.output[0])
                self.assertEqual(sorted(self.stats_functions()), sorted([name, other]), "the other one stays")
                with self.assertNoLogs("odoo.addons.async_lab.models.async_lab_stats", logging.INFO):
                    self.assertEqual(self.Stats.get_stats(window=60, now=self.now), expected)  # created once
                # The update: the function of this code, the other one dropped.
                self.Stats.init()
                self.assertEqual(self.stats_functions(), [name])
                self.assertEqual(self.channel(self.Stats.get_stats(now=self.now), IO)["done"], 4)
                savepoint.rollback()
        finally:
            self.env.registry.clear_cache()

    def test_a_stats_function_created_then_rolled_back_is_created_again(self):
        name = self.Stats._stats_function()[0]
        try:
            with self.env.cr.savepoint(flush=False) as savepoint:
                self.env.cr.execute(SQL("DROP FUNCTION %s", SQL.identifier(name)))
                self.env.registry.clear_cache()
                with self.env.cr.savepoint(flush=False) as created:
                    self.Stats.get_stats(now=self.now)
                    self.assertEqual(self.stats_functions(), [name])
                    created.rollback()  # the caller's transaction fails: the function goes with it
                self.assertEqual(self.stats_functions(), [])
                self.env.cr.postrollback.run()  # what the cursor runs after a rollback
                self.assertEqual(self.channel(self.Stats.get_stats(now=self.now), IO)["done"], 4)
                self.assertEqual(self.stats_functions(), [name])
                savepoint.rollback()
        finally:
            self.env.registry.clear_cache()
        self.assertEqual(self.stats_functions(), [name])

    def test_processes_creating_a_stats_function_at_once_all_succeed(self):
        """Two transactions find the function missing; the second waits for
        the first's commit, then succeeds, whatever its catalog cache says."""
        registry = self.env.registry
        name = "async_lab_test_concurrent_create_%d" % threading.get_ident()
        definition = SQL("CREATE OR REPLACE FUNCTION %s() RETURNS int LANGUAGE sql AS 'SELECT 1'", SQL.identifier(name))
        errors = []

        def second_process():
            try:
                with registry.cursor() as cr:
                    cr.execute("SELECT to_regproc(%s)", [name])  # its catalog cache: no such function
                    create_stats_function(cr, name, definition)
            except Exception as exc:
                errors.append(exc)

        first = registry.cursor()
        try:
            create_stats_function(first, name, definition)
            second = threading.Thread(target=second_process)
            second.start()
            for _attempt in range(100):  # until the second waits for the lock
                first.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = %s",
                    [STATS_FUNCTION_LOCK],
                )
                if first.fetchone()[0]:
                    break
                time.sleep(0.05)
            else:
                self.fail("the second transaction did not wait for the first")
            first.commit()
            second.join(10)
            self.assertFalse(second.is_alive())
            self.assertEqual(errors, [])
        finally:
            first.close()
            with registry.cursor() as cr:
                cr.execute(SQL("DROP FUNCTION IF EXISTS %s()", SQL.identifier(name)))

    def test_uninstall_drops_the_queue_job_indexes_and_the_function(self):
        self.assertEqual(get_manifest("async_lab")["uninstall_hook"], "uninstall_hook")
        self.assertEqual(self.database_objects(), [True] * 4)
        with self.env.cr.savepoint(flush=False) as savepoint:  # DDL is transactional: undone below
            uninstall_hook(self.env)
            self.assertEqual(self.database_objects(), [False] * 4)
            savepoint.rollback()
        self.assertEqual(self.database_objects(), [True] * 4)

    def test_the_done_jobs_index_holds_the_stage_durations(self):
        # Key columns 3 to 5, after channel and date_done: the durations the
        # percentiles sort (DONE_STAGES, which _stats_query uses too). An
        # index created under this name with another definition fails here.
        self.env.cr.execute(
            "SELECT pg_get_indexdef(%s::regclass, k, true) FROM generate_series(1, 5) AS k ORDER BY k", [DONE_INDEX]
        )
        keys = [" ".join(row[0].split()) for row in self.env.cr.fetchall()]
        self.assertEqual(keys[:2], ["channel", "date_done"])
        enqueued = (
            "CASE WHEN COALESCE(async_lab_date_received, date_enqueued) IS NOT NULL THEN GREATEST(LEAST("
            "COALESCE(async_lab_date_received, date_enqueued), date_started), date_created) ELSE NULL::"
            "timestamp without time zone END"
        )
        self.assertEqual(
            keys[2:],
            [
                f"date_part('epoch'::text, {enqueued} - date_created)",
                f"date_part('epoch'::text, date_started - {enqueued})",
                "date_part('epoch'::text, date_done - date_started)",
            ],
        )


@tagged("post_install", "-at_install")
class TestRunJobRecordsReception(HttpCase):
    """/queue_job/runjob, as the runner calls it, records when the job reached its worker."""

    def test_received_to_the_microsecond_between_enqueue_and_start(self):
        job = self.env["res.users"].browse(self.env.uid).with_delay(channel="root").exists()
        record = job.db_record()
        before = utcnow()
        # What the runner does: enqueued, to the second, then the request.
        self.env.cr.execute(
            "UPDATE queue_job SET state = 'enqueued', date_enqueued = date_trunc('seconds', %s::timestamp)"
            " WHERE uuid = %s",
            [before, job.uuid],
        )
        record.invalidate_recordset()
        response = self.url_open(f"/queue_job/runjob?db={self.env.cr.dbname}&job_uuid={job.uuid}")
        self.assertEqual(response.status_code, 200, response.text)
        record.invalidate_recordset()
        self.assertEqual(record.state, "done")
        received = record.async_lab_date_received
        self.assertTrue(before <= received <= record.date_started, (before, received, record.date_started))
        self.assertGreater(received, record.date_enqueued, "the runner's time is truncated, this one is not")


@tagged("at_install", "-post_install")
class TestLongWindows(AsyncLabCase):
    """Windows longer than an hour: read from the rollups, counts exact, percentiles within their bounds."""

    JOBS = 700

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.cr.execute("DELETE FROM queue_job")
        cls.env.cr.execute("DELETE FROM async_lab_metric")
        cls.env.cr.execute(SQL("DELETE FROM %s", SQL.identifier(HOUR_TABLE)))
        cls.Stats = cls.env["async_lab.stats"]
        cls.Metric = cls.env["async_lab.metric"]
        cls.now = now_minute() + timedelta(seconds=20)
        cls.jobs = []
        # Jobs over 35 hours, one every 3 minutes, with stage durations from
        # 10 ms to 20 s; every 37th fails.
        for i in range(cls.JOBS):
            channel = IO if i % 3 else CPU
            done = cls.now - timedelta(minutes=3 * i, seconds=i % 50)
            run = 0.05 + (i % 11) * 1.7
            started = done - timedelta(seconds=run)
            enqueued = started - timedelta(seconds=0.01 * (i % 13) + (20 if i % 17 == 0 else 0))
            created = enqueued - timedelta(seconds=(i % 7) * 0.3)
            failed = i % 37 == 0
            cls.insert_job(
                cls,
                channel,
                state="failed" if failed else "done",
                created=created,
                enqueued=enqueued,
                started=started,
                done=None if failed else done,
                async_lab_date_received=enqueued,
            )
            cls.jobs.append((channel, failed, created, enqueued, started, done))

    def roll_up(self, until):
        """What the every-minute cron has stored at ``until``, its backfill of the older jobs done."""
        for _run in range(20):
            self.Metric._rollup(now=until)
            if self.Metric._rolled()[0] <= self.now - timedelta(hours=36):
                return
        self.fail("the backfill does not reach the first job")

    def expected(self, window, step):
        """Counts, series and sorted stage durations of the window, from the jobs in Python."""
        since = self.now - timedelta(minutes=window)
        first = step_floor(since, step)
        counts = defaultdict(lambda: {"done": 0, "failed": 0})
        series = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        durations = defaultdict(lambda: defaultdict(list))
        for channel, failed, created, enqueued, started, done in self.jobs:
            at_ = started if failed else done
            if first <= at_ <= self.now:
                series[channel][step_floor(at_, step)][1 if failed else 0] += 1
            if not since <= at_ <= self.now:
                continue
            counts[channel]["failed" if failed else "done"] += 1
            if not failed:
                for stage, seconds in (
                    ("created_enqueued", (enqueued - created).total_seconds()),
                    ("enqueued_started", (started - enqueued).total_seconds()),
                    ("started_done", (done - started).total_seconds()),
                ):
                    durations[channel][stage].append(seconds)
        return counts, series, durations

    def assert_window(self, window):
        stats = self.Stats.get_stats(window=window, now=self.now)
        step = series_step(window)
        self.assertEqual(stats["latency_method"], "histogram")
        self.assertEqual(stats["series"]["step_minutes"], step)
        counts, series, durations = self.expected(window, step)
        points = [datetime.fromisoformat(p.rstrip("Z")) for p in stats["series"]["minutes"]]
        self.assertEqual(points[0], step_floor(self.now - timedelta(minutes=window), step))
        for row in stats["channels"]:
            name = row["name"]
            self.assertEqual((row["done"], row["failed"]), (counts[name]["done"], counts[name]["failed"]), name)
            got = stats["series"]["channels"].get(name, {"done": [0] * len(points), "failed": [0] * len(points)})
            self.assertEqual(
                list(zip(got["done"], got["failed"], strict=True)),
                [tuple(series[name].get(p, (0, 0))) for p in points],
                "%s series of %d min" % (name, window),
            )
            for stage, values in durations[name].items():
                values.sort()
                for q, fraction in (("p50", 0.5), ("p95", 0.95)):
                    # The bounds hold the value of rank ceil(q n); the figure lies in them.
                    lower, upper = row["latency_bounds"][stage][q]
                    ranked = values[math.ceil(fraction * len(values)) - 1]
                    self.assertLessEqual(lower, ranked, (name, stage, q))
                    self.assertLessEqual(ranked, upper, (name, stage, q))
                    self.assertTrue(lower <= row["latency"][stage][q] <= upper, (name, stage, q))
                self.assertEqual(
                    row["latency_resolution"][stage],
                    max(upper - lower for lower, upper in row["latency_bounds"][stage].values()),
                )
        return stats

    def test_counts_series_and_percentiles_of_long_windows(self):
        self.roll_up(self.now - timedelta(minutes=4))  # the last minutes are the live tail
        self.env.cr.execute(SQL("SELECT count(*) FROM %s", SQL.identifier(HOUR_TABLE)))
        self.assertGreater(self.env.cr.fetchone()[0], 60, "hour rows for both channels")
        for window in (61, 95, 360, 1440, 1500, 10080):
            with self.subTest(window=window):
                self.assert_window(window)

    def test_rollups_change_no_figure(self):
        # Nothing rolled up: every minute is read from the jobs, the same way.
        without = self.Stats.get_stats(window=1440, now=self.now)
        self.roll_up(self.now - timedelta(minutes=2))
        self.assertEqual(self.Stats.get_stats(window=1440, now=self.now), without)
        self.assertEqual(self.Stats.get_stats(window=10080, now=self.now)["totals"]["done_window"], self.JOBS - 19)

    def test_doctests(self):
        assert_doctests(self, async_lab_stats, more_than=5)

    def test_two_queries_whatever_the_window(self):
        # The span of the rollups, then the statement that holds it as constants.
        self.roll_up(self.now - timedelta(minutes=3))
        for window in (61, 10080):
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            self.Stats.get_stats(window=window, now=self.now)
            self.assertEqual(self.env.cr.sql_log_count - before, 2, window)

    def test_the_hour_window_stays_exact(self):
        self.roll_up(self.now - timedelta(minutes=3))
        stats = self.Stats.get_stats(window=60, now=self.now)
        self.assertEqual(stats["latency_method"], "exact")
        self.assertEqual(stats["series"]["step_minutes"], 1)
        io = [c for c in stats["channels"] if c["name"] == IO][0]
        for stage, values in io["latency"].items():
            self.assertEqual(io["latency_bounds"][stage], {q: [v, v] for q, v in values.items()})

    def test_update_fills_the_histograms_of_earlier_rows(self):
        self.roll_up(self.now - timedelta(minutes=3))
        expected = self.Stats.get_stats(window=10080, now=self.now)
        # A database of the version before: minute rows without histograms, no hour rows.
        self.env.cr.execute(SQL("DROP TABLE %s", SQL.identifier(HOUR_TABLE)))
        self.env.cr.execute(SQL("DROP TABLE %s", SQL.identifier(ROLLUP_TABLE)))
        for column in RAW_COLUMNS:
            self.env.cr.execute(SQL("ALTER TABLE async_lab_metric DROP COLUMN %s", SQL.identifier(column)))
        self.Metric.init()
        self.assertEqual(self.Stats.get_stats(window=10080, now=self.now), expected)

    def test_prune_drops_old_hours(self):
        self.roll_up(self.now - timedelta(minutes=3))
        self.Metric._cron_prune(now=self.now + timedelta(days=7, hours=-10))
        self.env.cr.execute(SQL("SELECT min(hour) FROM %s", SQL.identifier(HOUR_TABLE)))
        self.assertGreaterEqual(self.env.cr.fetchone()[0], self.now - timedelta(hours=12))
