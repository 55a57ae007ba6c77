# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import time
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import BaseCase, HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.queue_job.delay import chain

from ..lib import why
from .common import AsyncLabCase, assert_doctests, at

#: The job runner's channels, as its node reports them: short names are the runner's too (io is root.io).
RUNNER_CHANNELS = "root:4,io:2,serial:1:sequential"
#: This process's own channels, which are not the runner's: no test's answer may come from them.
LOCAL_CONFIG = (
    "root:8,root.io:5",
    {"root": {"name": "root", "capacity": 8}, "root.io": {"name": "root.io", "capacity": 5}},
)


class TestWhyRules(BaseCase):
    def test_doctests(self):
        assert_doctests(self, why, more_than=20)


class TestWhy(AsyncLabCase):
    """Each reason a job is held back, built in the database."""

    def setUp(self):
        super().setUp()
        self.env.cr.execute("DELETE FROM async_lab_worker")
        self.Stats = type(self.env["async_lab.stats"])
        self.Deployment = type(self.env["async_lab.deployment"])
        for target, attr, value in (
            (self.Stats, "_channel_config", LOCAL_CONFIG),
            (self.Deployment, "_runner_lock_held", True),
        ):
            patcher = patch.object(target, attr, return_value=value)
            patcher.start()
            self.addCleanup(patcher.stop)
        self.now = fields.Datetime.now()
        self.node("runner-host", 700, RUNNER_CHANNELS, runner=True)
        self.burst = self.Burst.create({"workload": "noop", "job_count": 1})

    def node(self, host, master, channels, runner=False, seen=None):
        """A node's heartbeats: an HTTP worker reporting its configuration, and its job runner if any."""
        now = seen or time.time()
        conf = {"workers": 2, "server_wide_modules": ["base", "web", "queue_job"], "channels": channels}
        Worker = self.env["async_lab.worker"]
        report = {"host": host, "master_pid": master, "now": now, "db": self.env.cr.dbname}
        Worker._upsert(
            dict(report, pid=master + 1, role="http", create_time=1.0 + master, server_config=conf), self_reported=True
        )
        if runner:
            Worker._upsert(
                dict(report, pid=master + 2, role="jobrunner", create_time=2.0 + master), self_reported=False
            )

    def lab(self, *jobs):
        """Make ``jobs`` lab jobs (of a burst): Async Lab users may read them."""
        for job in jobs:
            job.sudo().async_lab_burst_id = self.burst
        return jobs

    def job(self, channel="root.io", state="pending", **kw):
        job_id = self.insert_job(channel, state=state, created=kw.pop("created", at(self.now, -30)), **kw)
        return self.env["queue.job"].browse(job_id)

    def reason(self, job):
        job.invalidate_recordset()
        return job.async_lab_why()

    def test_scheduled(self):
        # As queue_job stores it: with_delay(eta=...).
        job = self.env["res.partner"].with_delay(eta=120, channel="root.io").exists().db_record()
        found = self.reason(job)
        self.assertEqual(found["code"], "scheduled")
        self.assertAlmostEqual(found["data"]["in_seconds"], 120, delta=5)
        self.assertIn("Scheduled", found["message"])

    def test_waiting_for_its_dependencies(self):
        # A real chain: the second job waits for the first.
        partner = self.env["res.partner"]
        nodes = [partner.delayable(channel="root.io").exists(), partner.delayable(channel="root.io").exists()]
        chain(*nodes).delay()
        first, second = (node._generated_job.db_record() for node in nodes)
        self.assertEqual(second.state, "wait_dependencies")
        found = self.reason(second)
        self.assertEqual(found["code"], "waiting_dependencies")
        self.assertEqual([(d["uuid"], d["state"]) for d in found["data"]["dependencies"]], [(first.uuid, "pending")])

    def test_channel_full_names_the_jobs_that_hold_it(self):
        running = [self.job(state="started", started=at(self.now, -i), worker_pid=1000 + i) for i in (3, 4)]
        found = self.reason(self.job())
        self.assertEqual(found["code"], "channel_full")
        self.assertEqual((found["data"]["channel"], found["data"]["capacity"]), ("root.io", 2))
        self.assertEqual({r["uuid"] for r in found["data"]["running"]}, {j.uuid for j in running})
        self.assertEqual({r["worker_pid"] for r in found["data"]["running"]}, {1003, 1004})
        self.assertIn("2 of 2", found["message"])

    def test_a_parent_channel_full_holds_it_too(self):
        for i in range(4):
            self.job(channel="root.other", state="started", started=at(self.now, -i))
        found = self.reason(self.job())
        data = found["data"]
        self.assertEqual((found["code"], data["channel"], data["capacity"]), ("channel_full", "root", 4))

    def test_a_full_channel_is_counted_whatever_runs_elsewhere(self):
        # 500 jobs of another channel started before the two of root.io: all are counted, none dropped.
        for i in range(500):
            self.job(channel="root.other", state="started", started=at(self.now, -600 + i))
        for i in (3, 4):
            self.job(state="started", started=at(self.now, -i), worker_pid=2000 + i)
        found = self.reason(self.job())
        data = found["data"]
        self.assertEqual((found["code"], data["channel"], data["capacity"]), ("channel_full", "root.io", 2))
        self.assertEqual({r["worker_pid"] for r in data["running"]}, {2003, 2004})

    def test_a_full_parent_says_how_many_jobs_it_runs_beyond_those_shown(self):
        for i in range(60):
            self.job(channel="root.other", state="started", started=at(self.now, -100 + i))
        found = self.reason(self.job())
        self.assertEqual((found["code"], found["data"]["channel"]), ("channel_full", "root"))
        self.assertEqual(found["data"]["running_count"], 60)
        self.assertIn("60 of 4", found["message"])

    def test_a_failed_job_blocks_its_sequential_channel(self):
        failed = self.job(channel="root.serial", state="failed", started=at(self.now, -10), exc_name="ValueError")
        found = self.reason(self.job(channel="root.serial"))
        self.assertEqual(found["code"], "sequential_blocked")
        self.assertEqual(found["data"]["blocking"]["uuid"], failed.uuid)

    def test_pending_counts_the_jobs_before_it(self):
        self.job(priority=5)
        self.job(priority=10)
        found = self.reason(self.job(priority=10))
        self.assertEqual((found["code"], found["data"]["ahead"]), ("pending", 2))

    def test_no_job_runner(self):
        # A runner serves the database if it holds queue_job's lock in it: a heartbeat alone is not enough.
        with patch.object(self.Deployment, "_runner_lock_held", return_value=False):
            self.assertEqual(self.reason(self.job())["code"], "runner_not_alive")

    def test_capacities_are_the_job_runner_nodes(self):
        # Another node, seen later, without a runner: its channels do not bind the jobs.
        self.node("web-host", 800, "root:4,io:5", seen=time.time() + 5)
        self.node("runner-host", 700, "root:4,io:1", runner=True)
        self.job(state="started", started=at(self.now, -3), worker_pid=1003)
        found = self.reason(self.job())
        self.assertEqual(found["code"], "channel_full", found)
        self.assertEqual((found["data"]["channel"], found["data"]["capacity"]), ("root.io", 1))
        # A job stored with the short name is in the same channel, as the runner reads it.
        found = self.reason(self.job(channel="io"))
        self.assertEqual((found["code"], found["data"]["channel"]), ("channel_full", "root.io"))

    def test_a_stopped_runner_nodes_channels_still_count(self):
        self.node("runner-host", 700, "root:4,io:1", runner=True, seen=time.time() - 600)
        self.env.cr.execute("UPDATE async_lab_worker SET state = 'gone'")
        self.node("web-host", 800, "root:4,io:5")
        self.job(state="started", started=at(self.now, -3))
        found = self.reason(self.job())
        self.assertEqual((found["code"], found["data"]["capacity"]), ("channel_full", 1))

    def test_without_a_runner_node_this_process_channels(self):
        self.env.cr.execute("DELETE FROM async_lab_worker")
        for _i in range(4):
            self.job(state="started", started=at(self.now, -3))
        found = self.reason(self.job())
        self.assertEqual((found["code"], found["data"]["capacity"]), ("pending", 5))

    def test_the_queue_ahead_is_counted_up_to_a_bound(self):
        self.env.cr.execute(
            """INSERT INTO queue_job (uuid, state, channel, priority, model_name, method_name, name,
                                      date_created, retry, max_retries, user_id, company_id)
               SELECT gen_random_uuid()::text, 'pending', 'root.io', 5, 'res.partner', 'exists', 'ahead',
                      %s, 0, 5, %s, %s
                 FROM generate_series(1, %s)""",
            [at(self.now, -60), self.env.uid, self.env.company.id, why.MAX_AHEAD + 2],
        )
        found = self.reason(self.job())
        self.assertEqual(
            (found["code"], found["data"]["ahead"], found["data"]["ahead_capped"]), ("pending", 10000, True)
        )
        self.assertIn("more than 10000 jobs", found["message"])

    def test_hidden_jobs_holding_the_channel_are_only_counted(self):
        business = self.job(state="started", started=at(self.now, -4), worker_pid=1004, model_name="res.partner")
        (lab,) = self.lab(self.job(state="started", started=at(self.now, -3), worker_pid=1003))
        (waiting,) = self.lab(self.job())
        found = waiting.with_user(self.user).async_lab_why()
        self.assertEqual(found["code"], "channel_full")
        self.assertEqual([(r["uuid"], r["worker_pid"]) for r in found["data"]["running"]], [(lab.uuid, 1003)])
        self.assertEqual(found["data"]["others"], 1)
        self.assertIn("2 of 2", found["message"])
        self.assertNotIn(business.uuid, str(found))
        # A queue_job manager sees them all.
        qj_manager = new_test_user(self.env, "why_qj", groups="base.group_user,queue_job.group_queue_job_manager")
        waiting.invalidate_recordset()
        found = waiting.with_user(qj_manager).async_lab_why()
        self.assertEqual({r["uuid"] for r in found["data"]["running"]}, {lab.uuid, business.uuid})
        self.assertEqual(found["data"]["others"], 0)

    def test_workers_busy_with_hidden_jobs_are_only_counted(self):
        self.env.cr.execute("UPDATE async_lab_worker SET state = 'gone'")  # the runner node's idle worker
        Worker = self.env["async_lab.worker"]
        for pid in (2001, 2002):
            Worker._upsert(
                {
                    "host": "h",
                    "pid": pid,
                    "master_pid": 2000,
                    "role": "http",
                    "create_time": 1.0 * pid,
                    "now": time.time(),
                    "busy_since": time.time() - 5,
                },
                self_reported=True,
            )
        business = self.job(state="started", started=at(self.now, -5), worker_pid=2001, model_name="res.partner")
        (lab,) = self.lab(self.job(state="started", started=at(self.now, -5), worker_pid=2002))
        (enqueued,) = self.lab(self.job(state="enqueued", enqueued=at(self.now, -2)))
        found = enqueued.with_user(self.user).async_lab_why()
        self.assertEqual(found["code"], "no_free_worker")
        self.assertEqual([(b["pid"], b["job"]) for b in found["data"]["busy"]], [(2002, lab.uuid)])
        self.assertEqual((found["data"]["others"], found["data"]["busy_with_jobs"]), (1, 2))
        self.assertNotIn(business.uuid, str(found))

    def test_a_hidden_blocking_job_is_not_named(self):
        failed = self.job(channel="root.serial", state="failed", started=at(self.now, -10), exc_name="SecretError")
        (waiting,) = self.lab(self.job(channel="root.serial"))
        found = waiting.with_user(self.user).async_lab_why()
        self.assertEqual(found["code"], "sequential_blocked")
        self.assertEqual(found["data"]["blocking"], {"uuid": None, "exception": None, "hidden": True})
        self.assertNotIn(failed.uuid, str(found))
        self.assertNotIn("SecretError", str(found))

    def test_started_on_a_process_the_map_knows_is_gone(self):
        self.env["async_lab.worker"]._upsert(
            {"host": "h", "pid": 4321, "master_pid": 1, "role": "http", "create_time": 1.0, "now": time.time() - 60},
            self_reported=True,
            final=True,
        )
        job = self.job(state="started", enqueued=at(self.now, -30), started=at(self.now, -29), worker_pid=4321)
        found = self.reason(job)
        self.assertEqual(found["code"], "worker_gone")
        self.assertEqual((found["data"]["worker_pid"], found["data"]["then"]), (4321, "pending"))
        self.assertEqual(found["data"]["requeued_within"], why.RUNNER_LOOP)

    def test_started_on_a_gone_process_whose_lock_is_still_held_gives_no_requeue_time(self):
        self.env["async_lab.worker"]._upsert(
            {"host": "h", "pid": 4323, "master_pid": 1, "role": "http", "create_time": 3.0, "now": time.time() - 60},
            self_reported=True,
            final=True,
        )
        job = self.job(state="started", enqueued=at(self.now, -30), started=at(self.now, -29), worker_pid=4323)
        with patch.object(type(job), "_async_lab_lock_free", return_value=False):
            found = self.reason(job)
        self.assertEqual((found["code"], found["data"]["requeued_within"]), ("worker_gone", None))
        self.assertNotIn("None", found["message"])
        self.assertIn("once the lock is free", found["message"])

    def test_started_longer_than_the_channel_p95(self):
        for i in range(20):
            self.job(state="done", started=at(self.now, -100 - i), done=at(self.now, -99 - i))
        self.env["async_lab.worker"]._upsert(
            {"host": "h", "pid": 4322, "master_pid": 1, "role": "http", "create_time": 2.0, "now": time.time()},
            self_reported=True,
        )
        found = self.reason(self.job(state="started", started=at(self.now, -30), worker_pid=4322))
        self.assertEqual(found["code"], "running_long")
        self.assertAlmostEqual(found["data"]["p95"], 1.0, places=2)

    def test_the_form_reads_no_stats_but_a_started_jobs_p95(self):
        """The banner is computed on every read of queue_job's form: only a started job needs the stats."""
        pending, started = self.job(), self.job(state="started", started=at(self.now, -1))
        with patch.object(self.Stats, "get_stats", autospec=True, side_effect=self.Stats.get_stats) as get_stats:
            pending.invalidate_recordset()
            self.assertEqual(pending.async_lab_why_code, "pending")
            self.assertEqual(get_stats.call_count, 0)
            started.invalidate_recordset()
            self.assertIn(started.async_lab_why_code, ("running", "worker_gone"))
            self.assertEqual(get_stats.call_count, 1)

    def test_the_form_opens_when_why_fails(self):
        job = self.job()

        def broken(*args, **kwargs):
            self.env.cr.execute("SELECT 1 / 0")

        with (
            patch.object(type(self.env["queue.job"]), "_async_lab_why_facts", broken),
            self.assertLogs("odoo.addons.async_lab.models.queue_job", "ERROR"),
            mute_logger("odoo.sql_db"),
        ):
            job.invalidate_recordset()
            self.assertEqual((job.async_lab_why_code, job.async_lab_why_message), (False, False))
        # The transaction goes on.
        self.assertEqual(job.read(["state"])[0]["state"], "pending")

    def test_failed_gives_the_last_line_of_its_exception(self):
        job = self.job(
            state="failed",
            exc_name="ValueError",
            exc_info="Traceback (most recent call last):\n  File x\nValueError: no such partner\n",
            retry=3,
        )
        found = self.reason(job)
        self.assertEqual((found["code"], found["data"]["last_line"]), ("failed", "ValueError: no such partner"))

    def test_done_gives_each_stage(self):
        job = self.job(
            state="done",
            created=at(self.now, -10),
            enqueued=at(self.now, -9),
            started=at(self.now, -7),
            done=at(self.now, -4),
        )
        self.assertEqual(
            self.reason(job)["data"]["stages"], {"created_enqueued": 1.0, "enqueued_started": 2.0, "started_done": 3.0}
        )

    def test_business_jobs_only_for_queue_job_managers(self):
        business = self.job(model_name="res.partner", method_name="write")
        with self.assertRaises(AccessError):
            business.with_user(self.user).async_lab_why()
        lab = self.job()
        lab.sudo().async_lab_burst_id = self.Burst.create({"workload": "noop", "job_count": 1})
        self.assertIn("code", lab.with_user(self.user).async_lab_why())


@tagged("post_install", "-at_install")
class TestWhyRoute(HttpCase):
    def test_route_answers_for_a_readable_job_and_404_otherwise(self):
        self.authenticate("admin", "admin")
        job = self.env["res.partner"].with_delay().exists().db_record()
        job.write(
            {
                "state": "done",
                "date_started": fields.Datetime.now() - timedelta(seconds=2),
                "date_done": fields.Datetime.now(),
            }
        )
        data = self.url_open("/async_lab/jobs/%s/why" % job.uuid).json()
        self.assertEqual((data["uuid"], data["code"]), (job.uuid, "done"))
        response = self.url_open("/async_lab/jobs/no-such-job/why")
        self.assertEqual((response.status_code, response.json()["error"]["code"]), (404, "not_found"))

    def test_queue_job_managers_ask_of_any_job(self):
        """queue_job's form shows why of every job: its managers need no Async Lab group."""
        job = self.env["res.partner"].with_delay().exists().db_record()
        expected = {
            "why_route_qj": ("base.group_user,queue_job.group_queue_job_manager", 200),
            "why_route_lab": ("base.group_user,async_lab.async_lab_group_user", 404),
            "why_route_internal": ("base.group_user", 403),
        }
        for login, (groups, status) in expected.items():
            with self.subTest(login=login):
                new_test_user(self.env, login, groups=groups)
                self.authenticate(login, login)
                response = self.url_open("/async_lab/jobs/%s/why" % job.uuid)
                self.assertEqual(response.status_code, status, response.text)
                if status == 200:
                    self.assertEqual(response.json()["uuid"], job.uuid)
                unknown = self.url_open("/async_lab/jobs/no-such-job/why").status_code
                self.assertEqual(unknown, 403 if status == 403 else 404)


class TestWhyOnTheJobForm(AsyncLabCase):
    def test_the_form_shows_the_reason(self):
        arch = self.env["queue.job"].get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn('name="async_lab_why_message"', arch)
        job = self.env["queue.job"].browse(self.insert_job("root", state="cancelled"))
        self.assertEqual(job.async_lab_why_code, "cancelled")
        self.assertEqual(job.async_lab_why_message, "Cancelled: it will not run.")
