# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""GET /async_lab/metrics: the counters' triggers, the snapshot, the exposition and who may scrape."""

import json
import os
import random
import time
from datetime import timedelta

import psycopg2
from prometheus_client.parser import text_string_to_metric_families

from odoo import fields
from odoo.sql_db import connection_info_for
from odoo.tests import BaseCase, HttpCase, new_test_user, tagged
from odoo.tools import SQL

from ..lib import metrics
from ..lib.times import to_epoch
from ..models import async_lab_metrics
from .common import AsyncLabCase, assert_doctests, at


def families(text):
    """``{name: {tuple(sorted(labels.items())): value}}`` of every sample of an exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


class TestLibMetrics(BaseCase):
    def test_doctests(self):
        assert_doctests(self, metrics, more_than=5)
        assert_doctests(self, async_lab_metrics, more_than=0)

    def test_bucket_index_matches_the_bounds(self):
        for index, bound in enumerate(metrics.BUCKETS, start=1):
            self.assertEqual(metrics.bucket_index(bound), index)
            self.assertEqual(metrics.bucket_index(bound * 1.0001), index + 1)

    def test_an_empty_snapshot_is_a_valid_exposition(self):
        samples = families(metrics.exposition({}).decode())
        self.assertEqual(samples["async_lab_job_runner_up"], {(): 0.0})
        self.assertNotIn("async_lab_jobs_done_total", samples)

    def test_wrong_bucket_count_is_refused(self):
        with self.assertRaisesRegex(ValueError, "3 bucket counts"):
            metrics.cumulative([1, 2, 3])


class TestMetricsCounters(AsyncLabCase):
    """The trigger-kept counters: each job once, and never down."""

    channel = "root.async_lab.metrics_test"

    def snapshot_channel(self):
        rows = {row["channel"]: row for row in self.env["async_lab.metrics"].get_snapshot()["channels"]}
        return rows.get(self.channel)

    def test_the_sql_buckets_are_the_python_ones(self):
        # The counters' function and the rollups' histograms (bucket_sql) against bucket_index.
        values = [-1.0, 0.0, 1e-06, 4000.0, *metrics.BUCKETS, *(bound * 1.0001 for bound in metrics.BUCKETS)]
        values += [bound * 0.9999 for bound in metrics.BUCKETS]
        self.env.cr.execute(
            SQL(
                "SELECT v, async_lab_stage_bucket(v), %s FROM unnest(%s::float8[]) AS v",
                SQL(metrics.bucket_sql("v")),
                values,
            )
        )
        for value, by_function, by_expression in self.env.cr.fetchall():
            self.assertEqual((by_function, by_expression), (metrics.bucket_index(value),) * 2, value)

    def test_done_and_failed_are_counted_once_and_survive_deletion(self):
        base = fields.Datetime.now() - timedelta(minutes=5)
        before = self.snapshot_channel()
        self.assertIsNone(before)
        job = self.insert_job(self.channel, state="started", created=base, enqueued=at(base, 1), started=at(base, 2))
        self.assertIsNone(self.snapshot_channel()["done_total"] or None)
        self.env.cr.execute("UPDATE queue_job SET state = 'done', date_done = %s WHERE id = %s", [at(base, 3.5), job])
        # Another write of the done job (its result, say) counts nothing.
        self.env.cr.execute("UPDATE queue_job SET state = 'done', result = 'x' WHERE id = %s", [job])
        row = self.snapshot_channel()
        self.assertEqual(row["done_total"], 1)
        self.assertEqual(row["failed_total"], 0)
        started_done = row["stages"]["started_done"]
        self.assertEqual(started_done["buckets"][metrics.bucket_index(1.5) - 1], 1)
        self.assertEqual(sum(started_done["buckets"]), 1)
        self.assertAlmostEqual(started_done["sum"], 1.5, places=3)
        # queue_job's autovacuum deletes done jobs: the counter stays.
        self.env.cr.execute("DELETE FROM queue_job WHERE id = %s", [job])
        self.assertEqual(self.snapshot_channel()["done_total"], 1)

    def test_each_failure_counts_and_a_requeue_takes_none_back(self):
        job = self.insert_job(self.channel, state="failed", started=fields.Datetime.now())
        self.assertEqual(self.snapshot_channel()["failed_total"], 1)
        self.assertEqual(self.snapshot_channel()["states"]["failed"], 1)
        self.env.cr.execute("UPDATE queue_job SET state = 'pending' WHERE id = %s", [job])
        row = self.snapshot_channel()
        self.assertEqual((row["failed_total"], row["states"]["failed"], row["states"]["pending"]), (1, 0, 1))
        self.env.cr.execute("UPDATE queue_job SET state = 'failed' WHERE id = %s", [job])
        self.assertEqual(self.snapshot_channel()["failed_total"], 2)

    def test_the_failed_gauge_follows_every_change_of_the_table(self):
        """Random inserts, state and channel changes and deletes: the failed gauge is always the table's count."""
        rng = random.Random(7)
        channels = ["%s_%s" % (self.channel, name) for name in "abc"]
        states = ["pending", "enqueued", "started", "done", "failed", "cancelled"]
        jobs = []
        done_entered = dict.fromkeys(channels, 0)
        for _step in range(150):
            action = rng.choice(["insert", "insert", "state", "state", "channel", "delete"]) if jobs else "insert"
            if action == "insert":
                channel, state = rng.choice(channels), rng.choice(states)
                jobs.append(self.insert_job(channel, state=state))
                done_entered[channel] += state == "done"
            elif action == "state":
                job, state = rng.choice(jobs), rng.choice(states)
                self.env.cr.execute("SELECT state, channel FROM queue_job WHERE id = %s", [job])
                old, channel = self.env.cr.fetchone()
                self.env.cr.execute("UPDATE queue_job SET state = %s WHERE id = %s", [state, job])
                done_entered[channel] += state == "done" and old != "done"
            elif action == "channel":
                self.env.cr.execute(
                    "UPDATE queue_job SET channel = %s WHERE id = %s", [rng.choice(channels), rng.choice(jobs)]
                )
            else:
                job = jobs.pop(rng.randrange(len(jobs)))
                self.env.cr.execute("DELETE FROM queue_job WHERE id = %s", [job])
            if _step % 7 == 0:  # the rollup cron moves the log into the totals: no figure changes
                self.env["async_lab.metrics"]._compact_counters()
            self.env.cr.execute(
                "SELECT channel, count(*) FROM queue_job WHERE state = 'failed' AND channel = ANY(%s) GROUP BY 1",
                [channels],
            )
            failed = dict(self.env.cr.fetchall())
            rows = {r["channel"]: r for r in self.env["async_lab.metrics"].get_snapshot()["channels"]}
            for channel in channels:
                row = rows.get(channel) or {"states": {}, "done_total": 0}
                self.assertEqual(row["states"].get("failed", 0), failed.get(channel, 0), (action, channel))
                self.assertEqual(row["done_total"], done_entered[channel], (action, channel))

    def test_a_job_run_by_queue_job_is_counted(self):
        burst = self.Burst.create({"workload": "noop", "job_count": 1})
        burst.action_launch()
        before = {row["channel"]: row["done_total"] for row in self.env["async_lab.metrics"].get_snapshot()["channels"]}
        record = self.env["queue.job"].search([("async_lab_burst_id", "=", burst.id)])
        self.perform_like_runner(record.uuid)
        after = {row["channel"]: row["done_total"] for row in self.env["async_lab.metrics"].get_snapshot()["channels"]}
        self.assertEqual(after[record.channel], before.get(record.channel, 0) + 1)

    def test_counters_start_from_the_jobs_already_there(self):
        base = fields.Datetime.now() - timedelta(hours=1)
        for seconds in (0.2, 0.3, 40):
            self.insert_job(self.channel, created=base, started=at(base, 1), done=at(base, 1 + seconds))
        self.insert_job(self.channel, state="failed", started=base)
        # As at the install: the table is created from what queue_job holds.
        async_lab_metrics.drop_counters(self.env.cr)
        self.env["async_lab.metrics"].init()
        row = self.snapshot_channel()
        self.assertEqual((row["done_total"], row["failed_total"], row["states"]["failed"]), (3, 1, 1))
        buckets = row["stages"]["started_done"]["buckets"]
        self.assertEqual(buckets[metrics.bucket_index(0.25) - 1], 1)  # 0.2 s, in le=0.25
        self.assertEqual(buckets[metrics.bucket_index(0.3) - 1], 1)  # 0.3 s, in le=0.5
        self.assertEqual(buckets[metrics.bucket_index(40) - 1], 1)
        self.assertAlmostEqual(row["stages"]["started_done"]["sum"], 40.5, places=3)
        # ...and the triggers count on from there.
        self.insert_job(self.channel, created=base, started=at(base, 1), done=at(base, 2))
        self.assertEqual(self.snapshot_channel()["done_total"], 4)

    def test_jobs_ended_at_once_by_two_workers_never_conflict(self):
        """Odoo's transactions are REPEATABLE READ: two that update one counter row at once, the
        second fails. The trigger only appends, so two workers ending jobs of one channel at once
        both commit (each in its own connection, as two HTTP workers)."""
        _db, info = connection_info_for(self.env.cr.dbname)
        channel = "%s_concurrent" % self.channel
        setup = psycopg2.connect(**info)
        setup.autocommit = True
        workers = [psycopg2.connect(**info) for _i in range(2)]
        for conn in workers:
            conn.set_session(isolation_level="REPEATABLE READ")

        def cleanup():
            for conn in workers:
                conn.close()
            with setup.cursor() as cr:
                cr.execute("DELETE FROM queue_job WHERE channel = %s", [channel])
                cr.execute("DELETE FROM async_lab_job_counter_log WHERE channel = %s", [channel])
                cr.execute("DELETE FROM async_lab_job_counter WHERE channel = %s", [channel])
            setup.close()

        self.addCleanup(cleanup)
        with setup.cursor() as cr:
            cr.execute(
                """INSERT INTO queue_job (uuid, state, channel, priority, model_name, method_name, name,
                                          date_created, date_started, retry, max_retries, user_id, company_id)
                   SELECT md5(random()::text), 'started', %s, 10, 'async_lab.burst', '_job_task', 'concurrent',
                          now() at time zone 'utc', now() at time zone 'utc', 0, 5, %s, %s
                     FROM generate_series(1, 4) RETURNING id""",
                [channel, self.env.uid, self.env.company.id],
            )
            ids = [row[0] for row in cr.fetchall()]
        cursors = [conn.cursor() for conn in workers]
        for cr in cursors:  # both transactions take their snapshot first
            cr.execute("SELECT 1")
        # Each worker ends a job done, then one failed, of the same channel.
        for cr, job in zip(cursors, ids[:2], strict=True):
            cr.execute("UPDATE queue_job SET state = 'done', date_done = now() at time zone 'utc' WHERE id = %s", [job])
        for cr, job in zip(cursors, ids[2:], strict=True):
            cr.execute("UPDATE queue_job SET state = 'failed' WHERE id = %s", [job])
        for conn in workers:
            conn.commit()  # with counter rows updated in place, the second would fail here or above
        with setup.cursor() as cr:
            cr.execute("SELECT sum(done), sum(failed) FROM async_lab_job_counter_log WHERE channel = %s", [channel])
            self.assertEqual(cr.fetchone(), (2, 2))

    def test_counters_of_another_shape_are_counted_again(self):
        self.insert_job(self.channel, state="failed")
        self.env.cr.execute("DELETE FROM async_lab_job_counter")
        self.env.cr.execute("ALTER TABLE async_lab_job_counter DROP COLUMN failed_now")
        self.env["async_lab.metrics"].init()
        self.assertEqual(self.snapshot_channel()["states"]["failed"], 1)
        # Other buckets: the histograms start again from the jobs there.
        self.env.cr.execute("UPDATE async_lab_job_counter SET started_done = '{0,0}'")
        self.env["async_lab.metrics"].init()
        self.assertEqual(len(self.snapshot_channel()["stages"]["started_done"]["buckets"]), len(metrics.BUCKETS) + 1)

    def test_respawns_are_counted_past_their_pruning(self):
        def total():
            rows = self.env["async_lab.metrics"].get_snapshot()["respawns"]
            return sum(r["total"] for r in rows if r["host"] == "metrics-host" and r["reason"] == "memory_limit")

        old = fields.Datetime.now() - timedelta(days=400)
        self.env["async_lab.respawn"].create(
            {"host": "metrics-host", "role": "http", "reason": "memory_limit", "respawned_at": old}
        )
        self.assertEqual(total(), 1)
        self.env["async_lab.worker"]._prune(time.time())
        self.assertFalse(self.env["async_lab.respawn"].search([("host", "=", "metrics-host")]))
        self.assertEqual(total(), 1)

    def test_a_scrape_costs_the_same_whatever_the_jobs(self):
        statements = []
        execute = type(self.env.cr).execute

        def counting(cr, query, params=None, log_exceptions=True):
            statements.append(query)
            return execute(cr, query, params, log_exceptions)

        def scrape():
            statements[:] = []
            type(self.env.cr).execute = counting
            try:
                self.env["async_lab.metrics"].render()
            finally:
                type(self.env.cr).execute = execute
            return len(statements)

        base = fields.Datetime.now() - timedelta(minutes=1)

        def add_jobs(channels, per_channel):
            for index in range(channels * per_channel):
                channel = "%s_%d" % (self.channel, index % channels)
                self.insert_job(channel, created=base, started=at(base, 1), done=at(base, 2))
                self.insert_job(channel, state="pending", created=base)
                self.insert_job(channel, state="failed", created=base, started=at(base, 1))

        add_jobs(1, 1)
        scrape()  # the first one fills the caches (groups, languages, the stats function)
        few = scrape()
        first = [str(q)[:80] for q in statements]
        add_jobs(8, 10)
        more = scrape()
        self.assertEqual(more, few, "\n".join(first) + "\n------\n" + "\n".join(str(q)[:80] for q in statements))

    def test_processes_and_runner(self):
        from .common import heartbeat_snapshot

        self.env["async_lab.worker"]._heartbeat(heartbeat_snapshot(self.env, host="metrics-host", pid=4343))
        snapshot = self.env["async_lab.metrics"].get_snapshot()
        (process,) = [p for p in snapshot["processes"] if p["host"] == "metrics-host"]
        self.assertEqual(
            {k: process[k] for k in ("pid", "role", "up", "rss_bytes", "cpu_seconds", "requests", "jobs")},
            {
                "pid": 4343,
                "role": "http",
                "up": True,
                "rss_bytes": 100 * 2**20,
                "cpu_seconds": 1.0,
                "requests": 3,
                "jobs": 1,
            },
        )
        worker = self.env["async_lab.worker"].search([("host", "=", "metrics-host"), ("pid", "=", 4343)])
        self.assertEqual(process["start_time"], to_epoch(worker.started_at))
        # Odoo's test runner starts no job runner; pytest-odoo's HTTP server starts queue_job's
        # runner thread in this process, whose connection then holds the lock.
        if self.env["async_lab.deployment"]._runner_lock_held():
            self.assertEqual((snapshot["runner"]["up"], snapshot["runner"]["pid"]), (True, os.getpid()))
        else:
            self.assertEqual(snapshot["runner"], {"up": False, "host": None, "pid": None})
        text = self.env["async_lab.metrics"].render().decode()
        samples = families(text)
        labels = (("host", "metrics-host"), ("pid", "4343"), ("role", "http"))
        self.assertEqual(samples["async_lab_process_resident_memory_bytes"][labels], 100 * 2**20)
        self.assertEqual(samples["async_lab_process_requests_total"][labels], 3)
        self.assertIn("async_lab_scrape_duration_seconds", samples)


@tagged("post_install", "-at_install")
class TestMetricsRoute(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lab_user = new_test_user(
            cls.env, login="metrics_lab_user", groups="base.group_user,async_lab.async_lab_group_user"
        )
        cls.internal = new_test_user(cls.env, login="metrics_internal", groups="base.group_user")

    def key_of(self, user):
        return self.env["res.users.apikeys"].with_user(user)._generate(None, "prometheus")

    def scrape(self, key=None):
        headers = {"Authorization": "Bearer %s" % key} if key else {}
        return self.url_open("/async_lab/metrics", headers=headers)

    def assert_error(self, resp, status, code):
        self.assertEqual(resp.status_code, status, resp.text)
        self.assertEqual(json.loads(resp.text)["error"]["code"], code)

    def test_an_api_key_of_an_async_lab_user_scrapes(self):
        resp = self.scrape(self.key_of(self.lab_user))
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertEqual(resp.headers["Content-Type"], metrics.CONTENT_TYPE)
        samples = families(resp.text)
        self.assertIn("async_lab_job_runner_up", samples)
        self.assertIn("async_lab_jobs_done_total", samples)

    def test_anonymous_and_bad_keys_get_401_a_key_without_the_group_403(self):
        self.assert_error(self.scrape(), 401, "unauthorized")
        self.assert_error(self.scrape("not-a-key"), 401, "unauthorized")
        self.assert_error(self.scrape(self.key_of(self.internal)), 403, "forbidden")
        self.lab_user.active = False
        key = self.key_of(self.lab_user.with_context(active_test=False))
        self.assert_error(self.scrape(key), 401, "unauthorized")

    def test_a_session_scrapes(self):
        self.authenticate("metrics_lab_user", "metrics_lab_user")
        resp = self.scrape()
        self.assertEqual(resp.status_code, 200, resp.text)
        self.assertIn("async_lab_process_up", resp.text)
