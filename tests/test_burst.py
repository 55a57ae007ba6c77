# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import os
from datetime import timedelta
from unittest.mock import patch

import psycopg2

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import config, mute_logger

from odoo.addons.queue_job.tests.common import trap_jobs

from ..models import async_lab_burst
from ..models.async_lab_burst import BurstRunning, TooManyLabJobs
from .common import AsyncLabCase


@tagged("at_install", "-post_install")
class TestBurstEnqueue(AsyncLabCase):
    """What a launch enqueues: methods, channels, priorities, identity keys."""

    def test_independent_burst_enqueues_n_tasks(self):
        burst = self.Burst.create(
            {"workload": "io_sleep", "ms": 20, "job_count": 4, "channel": "root.async_lab.io", "priority": 12}
        )
        with trap_jobs() as trap:
            burst.with_user(self.manager).action_launch()
            trap.assert_jobs_count(4, only=burst._job_task)
            for index in range(4):
                trap.assert_enqueued_job(
                    burst._job_task,
                    args=(index, 1, {"ms": 20}),
                    kwargs={"workload": "io_sleep"},
                    properties={
                        "channel": "root.async_lab.io",
                        "priority": 12,
                        "max_retries": 5,
                        "identity_key": "async_lab.burst:%d:%d" % (burst.id, index),
                    },
                )
            self.assertFalse(any(job.depends_on for job in trap.enqueued_jobs))
            # Built, hence dated and dispatched, in index order.
            self.assertEqual([job.args[0] for job in trap.enqueued_jobs], [0, 1, 2, 3])
            dates = [job.date_created for job in trap.enqueued_jobs]
            self.assertEqual(dates, sorted(dates))
        self.assertEqual(burst.launch_count, 1)

    def test_lab_jobs_never_outrank_business_jobs(self):
        burst = self.Burst.create({"workload": "io_sleep", "ms": 1, "job_count": 2, "priority": 0})
        with trap_jobs() as trap:
            burst.action_launch()
            self.assertEqual({job.priority for job in trap.enqueued_jobs}, {async_lab_burst.MIN_PRIORITY})
        self.assertEqual(async_lab_burst.MIN_PRIORITY, 10, "queue_job's default priority")
        burst, _uuids = self.Burst.with_user(self.manager).api_create_and_launch("io_sleep", {"ms": 1}, 1, priority=0)
        self.assertEqual(burst.job_ids.priority, 10)

    def test_active_lab_jobs_are_capped(self):
        self.env["ir.config_parameter"].set_param("async_lab.max_active_jobs", "5")
        first = self.Burst.create({"workload": "io_sleep", "ms": 1, "job_count": 3})
        first.action_launch()
        second = self.Burst.create({"workload": "io_sleep", "ms": 1, "job_count": 2, "shape": "fanout"})
        with self.assertRaisesRegex(TooManyLabJobs, "3 are waiting or running, 3 more would pass the limit of 5"):
            second.action_launch()
        # The dashboard's launch and the experiments meet the same cap, as a UserError.
        with self.assertRaises(UserError):
            self.env["async_lab.dashboard"].with_user(self.manager).launch_burst("io_sleep", 3, None)
        experiment = self.env["async_lab.experiment"].create(
            {"name": "capped", "workload": "io_sleep", "ms": 1, "tasks": 2}
        )
        with self.assertRaises(TooManyLabJobs):
            experiment.with_user(self.manager).action_run()
        self.env.cr.execute("UPDATE queue_job SET state = 'failed' WHERE async_lab_burst_id = %s", [first.id])
        self.env["queue.job"].invalidate_model()
        second.action_launch()  # failed jobs are not in flight
        self.assertEqual(second.jobs_total, 3)

    def test_pruning_a_burst_removes_its_jobs_failed_ones_too(self):
        burst = self.Burst.create({"workload": "fail", "job_count": 2})
        burst.action_launch()
        self.env.cr.execute("UPDATE queue_job SET state = 'failed' WHERE async_lab_burst_id = %s", [burst.id])
        self.env["queue.job"].invalidate_model()
        uuids = burst.job_ids.mapped("uuid")
        now = burst.launched_at + timedelta(days=31)
        self.assertEqual(self.Burst._prune_finished(now), 1)
        self.assertFalse(self.env["queue.job"].search_count([("uuid", "in", uuids)]))

    def test_chain_and_fanout_shapes(self):
        chain_burst = self.Burst.create(
            {"workload": "cpu_python", "n": 1000, "job_count": 3, "shape": "chain", "channel": "root.async_lab.cpu"}
        )
        with trap_jobs() as trap:
            chain_burst.action_launch()
            jobs = {job.args[0]: job for job in trap.enqueued_jobs}
            self.assertEqual(sorted(jobs), [0, 1, 2])
            self.assertEqual(jobs[1].depends_on, {jobs[0]})
            self.assertEqual(jobs[2].depends_on, {jobs[1]})
        fanout = self.Burst.create({"workload": "io_sleep", "ms": 1, "job_count": 3, "shape": "fanout"})
        with trap_jobs() as trap:
            fanout.action_launch()
            trap.assert_jobs_count(3, only=fanout._job_task)
            trap.assert_jobs_count(1, only=fanout._job_reduce)
            tasks = [job for job in trap.enqueued_jobs if job.method_name == "_job_task"]
            (reduce_job,) = [job for job in trap.enqueued_jobs if job.method_name == "_job_reduce"]
            self.assertEqual(reduce_job.depends_on, set(tasks))
            self.assertEqual(len({job.graph_uuid for job in trap.enqueued_jobs}), 1)
            trap.perform_enqueued_jobs()

    def test_every_job_is_tagged_when_stored(self):
        """queue_job's _job_store_values hook tags each job, however it is enqueued."""
        burst = self.Burst.create({"workload": "io_sleep", "ms": 1, "job_count": 2, "shape": "fanout"})
        task = burst.with_delay()._job_task(0, 3, {"ms": 1}, workload="io_sleep")
        reduce_job = burst.with_delay()._job_reduce(3)
        uuids = [task.uuid, reduce_job.uuid]
        burst.with_user(self.manager).action_launch()
        Job = self.env["queue.job"]
        launched = Job.search(
            [
                ("uuid", "not in", uuids),
                ("model_name", "=", "async_lab.burst"),
                ("records", "!=", False),
                ("async_lab_burst_id", "=", burst.id),
            ]
        )
        self.assertEqual(len(launched), 3, "2 tasks and the reduce job")
        self.assertEqual(set(launched.mapped("async_lab_launch")), {1})
        jobs = Job.search([("uuid", "in", uuids)])
        self.assertEqual(jobs.mapped("async_lab_burst_id"), burst)
        self.assertEqual(set(jobs.mapped("async_lab_launch")), {3})
        # Stored again at each change of state: still tagged.
        done = self.perform_like_runner(task.uuid)
        self.assertEqual((done.state, done.async_lab_burst_id, done.async_lab_launch), ("done", burst, 3))

    def test_jobs_run_the_workload_they_were_launched_with(self):
        burst = self.Burst.create({"workload": "noop", "job_count": 2})
        with trap_jobs() as trap:
            burst.action_launch()
            burst.workload = "fail"  # edited while its jobs wait: they still run noop
            trap.perform_enqueued_jobs()  # would raise WorkloadFailure on "fail"
        self.assertEqual(burst.workload, "fail")

    def test_launch_is_for_managers(self):
        burst = self.Burst.create({"workload": "io_sleep", "ms": 1, "job_count": 1})
        with self.assertRaises(AccessError):
            burst.with_user(self.user).action_launch()

    def test_managers_requeue_failed_and_cancelled_jobs_with_queue_job(self):
        burst = self.Burst.create({"workload": "noop", "job_count": 3})
        burst.with_user(self.manager).action_launch()
        jobs = self.env["queue.job"].search([("async_lab_burst_id", "=", burst.id)], order="id")
        for job, state in zip(jobs, ("failed", "cancelled", "done"), strict=True):
            job.write({"state": state})
        ids = jobs.ids
        with self.assertRaises(AccessError):
            burst.with_user(self.user).action_requeue()
        burst.with_user(self.manager).action_requeue()
        jobs = self.env["queue.job"].browse(ids)
        jobs.invalidate_recordset()
        self.assertEqual(jobs.mapped("state"), ["pending", "pending", "done"])
        # In the server control log, as a process action is.
        log = self.env["async_lab.control"].search([("burst_id", "=", burst.id)])
        self.assertEqual((log.action, log.state, log.job_count, log.user_id), ("requeue_jobs", "done", 2, self.manager))
        self.assertIn("2 jobs of burst", log.result)
        burst.with_user(self.manager).action_cancel()
        log = self.env["async_lab.control"].search([("burst_id", "=", burst.id)], order="id desc", limit=1)
        self.assertEqual((log.action, log.job_count), ("cancel_jobs", 2))

    def test_launching_a_running_burst_is_refused(self):
        burst = self.Burst.create({"workload": "io_sleep", "ms": 1, "job_count": 3})
        burst.action_launch()  # stored for real: pending jobs
        self.assertEqual(burst.state, "running")
        self.assertEqual(burst.jobs_pending, 3)
        with self.assertRaisesRegex(BurstRunning, "still running"):
            burst.action_launch()
        self.env.cr.execute("UPDATE queue_job SET state = 'done' WHERE async_lab_burst_id = %s", [burst.id])
        burst.invalidate_recordset()
        burst.action_launch()
        self.assertEqual(burst.launch_count, 2)
        self.assertEqual(burst.jobs_total, 3, "progress shows the last launch only")
        self.assertEqual(len(burst.job_ids), 6)

    def test_bounds_and_bad_params(self):
        with self.assertRaisesRegex(ValidationError, "ms must be an integer between 1 and 10000"):
            self.Burst.create({"workload": "io_sleep", "ms": 0})
        with self.assertRaisesRegex(ValidationError, "n must be"):
            self.Burst.create({"workload": "cpu_python", "n": 10**9})
        with self.assertRaises(psycopg2.IntegrityError), mute_logger("odoo.sql_db"), self.env.cr.savepoint():
            self.Burst.create({"workload": "io_sleep", "job_count": 5000})
        with self.assertRaisesRegex(ValidationError, "set by the server"):
            self.Burst.api_create_and_launch("io_http", {"ms": 5, "url": "http://example.com"})
        with self.assertRaisesRegex(ValidationError, "Unknown workload"):
            self.Burst.api_create_and_launch("nope", {})


@tagged("at_install", "-post_install")
class TestBurstExecution(AsyncLabCase):
    """Jobs run as the runner runs them: success, retries, failure."""

    def launch(self, **vals):
        burst = self.Burst.create(vals)
        burst.action_launch()
        return burst, burst.job_ids.sorted("id").mapped("uuid")

    def test_job_notifications_are_throttled_for_the_whole_server(self):
        burst = self.Burst.create({"workload": "noop", "job_count": 1})
        sent = []
        self.patch(
            type(self.env["async_lab.stats"]),
            "_notify_dashboard",
            lambda _self, kind, payload=None: sent.append((kind, payload)),
        )
        self.patch(
            type(self.env["async_lab.stats"]),
            "_channel_config",
            lambda _self: ("root:3", {"root": {"name": "root", "capacity": 3}}),
        )
        # Jobs run in at most min(HTTP workers, root capacity) processes at once.
        for workers, settle_ms in ((8, 3000), (2, 2000), (0, 1000)):
            sent.clear()
            with (
                patch.dict(config.options, {"workers": workers}),
                patch.dict(async_lab_burst._next_job_notify, clear=True),
            ):
                burst._notify_job_done(4242)
                burst._notify_job_done(4242)  # within the silence: not sent
            self.assertEqual(sent, [("job", {"burst_id": burst.id, "pid": 4242, "settle_ms": settle_ms})])

    def test_io_sleep_jobs_run_and_report_the_pid(self):
        burst, uuids = self.launch(workload="io_sleep", ms=5, job_count=2)
        for uuid in uuids:
            job = self.perform_like_runner(uuid)
            self.assertEqual(job.state, "done")
            self.assertIn("pid %d" % os.getpid(), job.result)
        burst.invalidate_recordset()
        self.assertEqual((burst.state, burst.jobs_done), ("done", 2))
        self.assertEqual(burst.pid_distribution, [{"pid": os.getpid(), "jobs": 2}])

    def test_flaky_is_retried_then_succeeds(self):
        burst, (uuid,) = self.launch(workload="flaky", k=2, job_count=1)
        first = self.perform_like_runner(uuid)
        self.assertEqual((first.state, first.retry), ("pending", 1))
        self.assertIn("attempt 0", first.result or "")
        second = self.perform_like_runner(uuid)
        self.assertEqual((second.state, second.retry), ("pending", 2))
        third = self.perform_like_runner(uuid)
        self.assertEqual(third.state, "done")
        self.assertIn("ok after 2 retries", third.result)

    def test_flaky_beyond_max_retries_fails(self):
        burst, (uuid,) = self.launch(workload="flaky", k=5, job_count=1, max_retries=2)
        self.perform_like_runner(uuid)
        job = self.perform_like_runner(uuid)
        self.assertEqual(job.state, "failed")
        self.assertEqual(job.exc_name, "FailedJobError")

    def test_fail_shows_which_job_failed_and_why(self):
        burst, uuids = self.launch(workload="fail", job_count=2)
        for uuid in uuids:
            self.perform_like_runner(uuid)
        burst.invalidate_recordset()
        self.assertEqual(burst.state, "failed")
        self.assertEqual(burst.jobs_failed, 2)
        self.assertEqual(set(burst.failed_job_ids.mapped("exc_name")), {"WorkloadFailure"})
        self.assertTrue(all(burst.failed_job_ids.mapped("exc_message")))

    def test_fanout_reduce_summarises_the_tasks(self):
        burst, uuids = self.launch(workload="io_sleep", ms=1, job_count=3, shape="fanout")
        self.assertEqual(len(uuids), 4)
        jobs = burst.job_ids
        reduce_job = jobs.filtered(lambda j: j.method_name == "_job_reduce")
        self.assertEqual(reduce_job.state, "wait_dependencies")
        reduce_uuid = reduce_job.uuid
        for uuid in (jobs - reduce_job).mapped("uuid"):
            self.perform_like_runner(uuid)
        job = self.perform_like_runner(reduce_uuid)
        self.assertEqual(job.state, "done")
        self.assertIn("reduced 3 tasks run by 1 processes", job.result)

    def test_users_read_burst_jobs_only(self):
        burst, uuids = self.launch(workload="io_sleep", ms=1, job_count=1)
        other = self.insert_job("root", state="pending")
        visible = self.env["queue.job"].with_user(self.user).search([])
        self.assertIn(uuids[0], visible.mapped("uuid"))
        self.assertNotIn(other, visible.ids)

    def test_demo_ticker_launches_once_at_a_time(self):
        demo = self.env.ref("async_lab.async_lab_burst_demo")
        self.assertTrue(self.Burst._cron_demo_tick())
        self.assertEqual(demo.jobs_total, 6)
        self.assertFalse(self.Burst._cron_demo_tick(), "not while its jobs are still to run")
