# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import time
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import BaseCase, HttpCase, tagged

from odoo.addons.queue_job.delay import chain

from ..lib import why
from .common import AsyncLabCase, assert_doctests, at

CONFIG = {
    "root": {"name": "root", "capacity": 4},
    "root.io": {"name": "root.io", "capacity": 2},
    "root.serial": {"name": "root.serial", "capacity": 1, "sequential": True},
}


class TestWhyRules(BaseCase):
    def test_doctests(self):
        assert_doctests(self, why, more_than=20)


class TestWhy(AsyncLabCase):
    """Each reason a job is held back, built in the database."""

    def setUp(self):
        super().setUp()
        self.env.cr.execute("UPDATE async_lab_worker SET state = 'gone' WHERE state != 'gone'")
        Stats = type(self.env["async_lab.stats"])
        Advisor = type(self.env["async_lab.advisor"])
        for target, attr, value in (
            (Stats, "_channel_config", ("", CONFIG)),
            (Advisor, "_runner_alive", True),
        ):
            patcher = patch.object(target, attr, return_value=value)
            patcher.start()
            self.addCleanup(patcher.stop)
        self.now = fields.Datetime.now()

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
        with patch.object(type(self.env["async_lab.advisor"]), "_runner_alive", return_value=False):
            self.assertEqual(self.reason(self.job())["code"], "runner_not_alive")

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


class TestWhyOnTheJobForm(AsyncLabCase):
    def test_the_form_shows_the_reason(self):
        arch = self.env["queue.job"].get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn('name="async_lab_why_message"', arch)
        job = self.env["queue.job"].browse(self.insert_job("root", state="cancelled"))
        self.assertEqual(job.async_lab_why_code, "cancelled")
        self.assertEqual(job.async_lab_why_message, "Cancelled: it will not run.")
