# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
from contextlib import closing, contextmanager
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import AccessError, ValidationError
from odoo.sql_db import db_connect
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import config, mute_logger

from ..models.async_lab_burst import LOCK_DB_SLOTS, LOCK_RUN, LOCK_SPACE, BurstRunning, LabBusy
from .common import AsyncLabCase


@contextmanager
def held_elsewhere(dbname, *keys):
    """Advisory locks (LOCK_SPACE, key) held by another connection, as another
    process of the server would hold them, until the block ends."""
    with closing(db_connect(dbname).cursor()) as cr:
        for key in keys:
            cr.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [LOCK_SPACE, key])
            assert cr.fetchone()[0], "lock %s is already held" % key
        try:
            yield
        finally:
            cr.rollback()


class ManagerCase(AsyncLabCase):
    """Experiments as a Manager runs them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Experiment = cls.env["async_lab.experiment"].with_user(cls.manager)


@tagged("at_install", "-post_install")
class TestLabBounds(ManagerCase):
    """One lab run per database, and io_db's connections bounded server-wide."""

    def set_max_connections(self, count):
        self.env["ir.config_parameter"].sudo().set_param("async_lab.max_db_connections", str(count))

    def test_one_lab_run_per_database(self):
        dbname = self.env.cr.dbname
        with held_elsewhere(dbname, LOCK_RUN):
            with self.assertRaisesRegex(LabBusy, "Another lab run is in progress"):
                self.Experiment.api_run_inline("io_sleep", {"ms": 1}, "threads", 2)
            self.assertTrue(issubclass(LabBusy, BurstRunning), "answered 409 like a running burst")
            # A queued experiment waits its turn: postponed, its retries not counted.
            experiment = self.Experiment.create(
                {"name": "waits", "workload": "io_sleep", "ms": 1, "tasks": 2, "use_queue_job": False}
            )
            experiment.action_run()
            job = experiment.job_ids
            self.assertEqual(job.method_name, "_job_run")
            job = self.perform_like_runner(job.uuid)
            self.assertEqual((job.state, job.retry, experiment.state), ("pending", 0, "queued"))
            self.assertIn("Another lab run", job.result)
        # An experiment whose queue_job fan-out runs holds the lab too.
        running = self.Experiment.create({"name": "fan-out", "workload": "io_sleep", "ms": 1, "tasks": 2})
        running.sudo().state = "running"
        with self.assertRaisesRegex(LabBusy, "Experiment fan-out is running"):
            self.Experiment.api_run_inline("io_sleep", {"ms": 1}, "threads", 2)
        running.sudo().state = "done"
        self.assertEqual(self.perform_like_runner(job.uuid).state, "done")
        self.assertEqual(experiment.state, "done")
        self.assertEqual(self.Experiment.api_run_inline("io_sleep", {"ms": 1}, "threads", 2)["errors"], 0)

    def test_io_db_pools_are_no_larger_than_the_connection_slots(self):
        self.set_max_connections(3)
        result = self.Experiment.api_run_inline("io_db", {"ms": 20}, "threads", 8)
        self.assertEqual((result["pool_size"], result["errors"]), (3, 0), "8 tasks, 3 connections at once")

    def test_io_db_shares_its_slots_with_the_other_processes(self):
        self.set_max_connections(3)
        with held_elsewhere(self.env.cr.dbname, LOCK_DB_SLOTS, LOCK_DB_SLOTS + 1):
            result = self.Experiment.api_run_inline("io_db", {"ms": 20}, "asyncio", 4)
        self.assertEqual(result["pool_size"], 1, "2 of the 3 slots are taken elsewhere")

    def test_io_db_waits_when_every_slot_is_taken(self):
        self.set_max_connections(2)
        burst = self.Burst.create({"workload": "io_db", "ms": 1, "job_count": 1})
        burst.action_launch()
        with held_elsewhere(self.env.cr.dbname, LOCK_DB_SLOTS, LOCK_DB_SLOTS + 1):
            with self.assertRaisesRegex(LabBusy, "The 2 connections of io_db are all in use"):
                self.Experiment.api_run_inline("io_db", {"ms": 20}, "threads", 4)
            # A burst's io_db job waits for a slot: postponed, its retries not counted.
            job = self.perform_like_runner(burst.job_ids.uuid)
            self.assertEqual((job.state, job.retry), ("pending", 0))
            self.assertIn("async_lab.max_db_connections", job.result)
        self.assertEqual(self.perform_like_runner(job.uuid).state, "done")

    def test_a_run_past_its_deadline_is_cut_and_says_so(self):
        experiment = self.Experiment.create(
            {"name": "late", "workload": "io_sleep", "ms": 200, "tasks": 8, "pool_size": 2}
        )
        experiment.action_run()
        with patch.object(type(self.env["async_lab.experiment"]), "_run_seconds_allowed", return_value=0.3):
            self.perform_like_runner(experiment.job_ids.uuid)
            result = self.Experiment.api_run_inline("io_sleep", {"ms": 200}, "sequential", 8)
        self.assertEqual(experiment.state, "timeout")
        self.assertIn("Stopped at its deadline of 0 s: sequential was cut", experiment.error)
        self.assertIn("not run: threads, processes, asyncio, queue_job", experiment.error)
        self.assertEqual(experiment.result_ids.strategy, "sequential")
        self.assertGreater(experiment.result_ids.cancelled, 0)
        self.assertEqual(experiment.job_ids.method_name, "_job_run", "no queue_job fan-out after the deadline")
        self.assertTrue(result["timed_out"])
        self.assertGreater(result["cancelled"], 0)

    def test_the_deadline_stays_below_the_worker_limits(self):
        Experiment = self.env["async_lab.experiment"]
        limits = {"workers": 2, "limit_time_real": 100, "limit_time_cpu": 60}
        with patch.dict(config.options, limits):
            self.assertEqual(Experiment._run_seconds_allowed(), 48)
        self.env["ir.config_parameter"].sudo().set_param("async_lab.run_timeout_seconds", "90")
        with patch.dict(config.options, dict(limits, workers=0)):
            self.assertEqual(Experiment._run_seconds_allowed(), 90, "threaded mode: no watchdog, the setting")

    def test_a_single_run_is_capped_on_its_own_duration(self):
        """POST /async_lab/run measures one strategy, with no sequential baseline
        (64 × 300 ms on threads is one wave, not 39 s)."""
        with patch.object(type(self.env["async_lab.experiment"]), "_duration_cap", return_value=10):
            with patch("odoo.addons.async_lab.lib.strategies.run_strategy") as run:
                run.return_value.as_dict.return_value = {}
                self.Experiment.api_run_inline("io_sleep", {"ms": 300}, "threads", 64)
            run.assert_called_once()
            with self.assertRaisesRegex(ValidationError, "About 19 s of work, more than the 10 s allowed"):
                self.Experiment.api_run_inline("io_sleep", {"ms": 300}, "sequential", 64)

    def test_default_bound_derives_from_db_maxconn(self):
        self.assertEqual(self.Burst._max_db_connections(), max(1, config["db_maxconn"] // 4))


@tagged("post_install", "-at_install")
class TestRunConflict(HttpCase):
    def test_a_second_lab_run_gets_409(self):
        new_test_user(self.env, "lab_conflict", groups="base.group_user,async_lab.async_lab_group_manager")
        self.authenticate("lab_conflict", "lab_conflict")
        body = json.dumps({"workload": "io_sleep", "params": {"ms": 1}, "strategy": "threads", "tasks": 2})
        with held_elsewhere(self.env.cr.dbname, LOCK_RUN):
            resp = self.url_open("/async_lab/run", data=body, headers={"Content-Type": "application/json"})
        self.assertEqual(resp.status_code, 409, resp.text)
        self.assertEqual(resp.json()["error"]["code"], "conflict")
        self.assertIn("One lab run at a time", resp.json()["error"]["message"])


@tagged("at_install", "-post_install")
class TestReconcile(ManagerCase):
    """Stuck chains and experiments end after a timeout; Managers cancel and reset."""

    def later(self, minutes):
        return fields.Datetime.now() + timedelta(minutes=minutes)

    def test_a_chain_behind_a_failed_job_is_cancelled_after_the_timeout(self):
        burst = self.Burst.create({"workload": "fail", "job_count": 3, "shape": "chain", "max_retries": 0})
        burst.action_launch()
        first = burst.job_ids.filtered(lambda job: job.state == "pending")
        with mute_logger("odoo.addons.queue_job.models.base"):
            self.assertEqual(self.perform_like_runner(first.uuid).state, "failed")
        self.assertEqual((burst.state, burst.jobs_wait_dependencies), ("running", 2))
        with self.assertRaises(BurstRunning):
            burst.action_launch()
        self.assertEqual(self.Burst._cron_reconcile(now=self.later(5)), 0, "the failed job may still be requeued")
        self.assertEqual(self.Burst._cron_reconcile(now=self.later(16)), 2)
        burst.invalidate_recordset()
        self.assertEqual((burst.state, burst.jobs_cancelled, burst.jobs_failed), ("failed", 2, 1))
        waiting = burst.job_ids - first
        self.assertEqual(set(waiting.mapped("state")), {"cancelled"})
        self.assertIn("a job it depends on failed", waiting[0].result)
        burst.action_launch()  # no more 409
        self.assertEqual(burst.launch_count, 2)

    def test_managers_cancel_and_reset_a_burst(self):
        burst = self.Burst.create({"workload": "io_sleep", "ms": 1, "job_count": 4})
        burst.action_launch()
        running = burst.job_ids[0]
        self.env.cr.execute("UPDATE queue_job SET state = 'started' WHERE id = %s", [running.id])
        self.env["queue.job"].invalidate_model()
        with self.assertRaises(AccessError):
            burst.with_user(self.user).action_cancel()
        burst.with_user(self.manager).action_cancel()
        burst.invalidate_recordset()
        self.assertEqual((burst.state, burst.jobs_cancelled, burst.jobs_started), ("running", 3, 1))
        self.assertIn("Cancelled by Lab manager", (burst.job_ids - running)[0].result)
        burst.with_user(self.manager).action_reset()
        burst.invalidate_recordset()
        self.assertEqual(burst.job_ids, running, "a running job is left to end")
        self.env.cr.execute("UPDATE queue_job SET state = 'done' WHERE id = %s", [running.id])
        self.env["queue.job"].invalidate_model()
        burst.with_user(self.manager).action_reset()
        burst.invalidate_recordset()
        self.assertEqual((burst.state, len(burst.job_ids)), ("draft", 0))
        form = self.env.ref("async_lab.async_lab_burst_view_form").arch
        for action in ("action_cancel", "action_reset"):
            self.assertRegex(form, r'name="%s"[^>]*confirm=' % action)

    def test_an_experiment_whose_job_died_is_failed_with_the_reason(self):
        experiment = self.Experiment.create({"name": "dies", "workload": "io_sleep", "ms": 1, "tasks": 2})
        experiment.action_run()
        self.env.cr.execute(
            "UPDATE queue_job SET state = 'failed', exc_name = 'JobFoundDead', "
            "exc_message = 'Job found dead after too many retries' WHERE async_lab_experiment_id = %s",
            [experiment.id],
        )
        self.env["queue.job"].invalidate_model()
        self.Burst._cron_reconcile(now=fields.Datetime.now())
        self.assertEqual(experiment.state, "queued", "within the grace period")
        self.Burst._cron_reconcile(now=self.later(2))
        self.assertEqual(experiment.state, "failed")
        self.assertIn("JobFoundDead: Job found dead after too many retries", experiment.error)

    def test_an_experiment_without_progress_times_out(self):
        experiment = self.Experiment.create({"name": "stalls", "workload": "io_sleep", "ms": 1, "tasks": 2})
        experiment.action_run()
        self.Burst._cron_reconcile(now=self.later(5))
        self.assertEqual(experiment.state, "queued")
        self.Burst._cron_reconcile(now=self.later(16))
        self.assertEqual(experiment.state, "timeout")
        self.assertIn("no progress since", experiment.error)
        self.assertEqual(experiment.job_ids.state, "cancelled")

    def test_managers_cancel_and_reset_an_experiment(self):
        experiment = self.Experiment.create({"name": "stop", "workload": "io_sleep", "ms": 1, "tasks": 2})
        experiment.action_run()
        with self.assertRaises(AccessError):
            experiment.with_user(self.user).action_cancel()
        experiment.action_cancel()
        self.assertEqual(experiment.state, "cancelled")
        self.assertIn("Cancelled by Lab manager", experiment.error)
        self.assertEqual(experiment.job_ids.state, "cancelled")
        self.assertIn("nothing to do", experiment._job_run())
        experiment.action_reset()
        self.assertEqual((experiment.state, experiment.error), ("draft", False))
        form = self.env.ref("async_lab.async_lab_experiment_view_form").arch
        for action in ("action_cancel", "action_reset"):
            self.assertRegex(form, r'name="%s"[^>]*confirm=' % action)
        self.assertTrue(self.env.ref("async_lab.async_lab_burst_cron_reconcile").active)
