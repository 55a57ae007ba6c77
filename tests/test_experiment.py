# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
import os
from datetime import timedelta, timezone
from unittest.mock import patch

import psycopg2
import requests

from odoo import SUPERUSER_ID, fields, http
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.sql_db import TestCursor
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import config, mute_logger

from ..lib import impact, workloads
from ..models import async_lab_experiment
from ..models.async_lab_burst import TooManyLabJobs
from ..models.async_lab_experiment import PRESETS
from .common import AsyncLabCase, at


@tagged("at_install", "-post_install")
class TestExperiment(AsyncLabCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Experiment = cls.env["async_lab.experiment"]

    def test_presets_reproduce_the_talk(self):
        names = [p["name"] for p in self.Experiment.get_presets()]
        self.assertEqual(
            names,
            [
                "I/O-bound: 16 × 200 ms sleep",
                "I/O-bound: 16 × HTTP call",
                "CPU-bound, GIL held: 8 × pure-Python loop",
                "CPU-bound, GIL released: 8 × hashlib on 32 MB",
                "User impact: 40 × 1 s jobs against a steady probe",
            ],
        )
        for key in PRESETS:
            with self.subTest(preset=key):
                experiment = self.Experiment.new({"preset": key})
                experiment._onchange_preset()
                self.assertEqual(experiment.workload, PRESETS[key][1])
                self.assertGreater(experiment.predicted_seconds, 0)

    def test_bounds(self):
        with self.assertRaisesRegex(ValidationError, "would take about"):
            self.Experiment.create({"workload": "cpu_python", "n": 50_000_000, "tasks": 64})
        with self.assertRaisesRegex(ValidationError, "failures, not speed"):
            self.Experiment.create({"workload": "fail", "tasks": 2})
        with self.assertRaisesRegex(ValidationError, "ms must be"):
            self.Experiment.create({"workload": "io_sleep", "ms": 0})
        with self.assertRaises(psycopg2.IntegrityError), mute_logger("odoo.sql_db"), self.env.cr.savepoint():
            self.Experiment.create({"workload": "io_sleep", "ms": 1, "tasks": 65})

    def test_a_failed_queue_job_task_is_counted_not_stuck(self):
        no_local = {"use_threads": False, "use_processes": False, "use_asyncio": False}
        experiment = self.Experiment.create({"name": "fails", "workload": "io_sleep", "ms": 1, "tasks": 2, **no_local})
        experiment.action_run()
        Job = self.env["queue.job"]

        def perform(method):
            jobs = Job.search([("model_name", "=", "async_lab.experiment"), ("method_name", "=", method)], order="id")
            for job in jobs.filtered(lambda j: j.state in ("pending", "enqueued")):
                self.assertEqual(self.perform_like_runner(job.uuid).state, "done")

        perform("_job_run")
        perform("_job_dispatch_probe")
        perform("_job_fan_out_tasks")
        real_run_task = workloads.run_task
        calls = []

        def run_task(name, params):
            calls.append(name)
            if len(calls) == 1:
                raise OSError("the disk is on fire")
            return real_run_task(name, params)

        with patch.object(workloads, "run_task", run_task):
            perform("_job_task")
        perform("_job_collect")
        experiment.invalidate_recordset()
        self.assertEqual(experiment.state, "done")
        row = experiment.result_ids.filtered(lambda r: r.strategy == "queue_job")
        self.assertEqual((row.tasks, row.errors), (2, 1))
        self.assertIn("OSError: the disk is on fire", row.first_error)

    def test_calls_to_this_server_are_bounded_by_its_free_http_workers(self):
        http = self.Experiment.create({"workload": "io_http", "ms": 1, "tasks": 16})
        sleep = self.Experiment.create({"workload": "io_sleep", "ms": 1, "tasks": 16})
        with patch.dict(config.options, {"workers": 8}):
            # One worker runs the experiment; a queue_job task holds one worker and calls another.
            self.assertEqual((http._server_slots(), http._server_slots(queue_job=True)), (7, 4))
            self.assertIsNone(sleep._server_slots())
        with patch.dict(config.options, {"workers": 0}):
            self.assertIsNone(http._server_slots(), "a threaded server answers in threads")

    def test_run_is_for_managers(self):
        experiment = self.Experiment.create({"workload": "io_sleep", "ms": 1, "tasks": 1})
        with self.assertRaises(AccessError):
            experiment.with_user(self.user).action_run()
        with self.assertRaises(AccessError):
            self.Experiment.with_user(self.user).run_preset("io_sleep")
        with self.assertRaises(AccessError):
            self.Experiment.with_user(self.user).api_run_inline("io_sleep", {"ms": 1}, "threads", 1)

    def test_end_to_end_through_the_job(self):
        experiment = self.Experiment.create({"name": "e2e", "workload": "io_sleep", "ms": 40, "tasks": 4})
        experiment.with_user(self.manager).action_run()
        self.assertEqual(experiment.state, "queued")
        run_job = self.env["queue.job"].search(
            [("model_name", "=", "async_lab.experiment"), ("method_name", "=", "_job_run")], order="id desc", limit=1
        )
        self.assertEqual(run_job.channel, "root.async_lab.cpu")
        self.assertEqual(self.perform_like_runner(run_job.uuid).state, "done")
        self.assertEqual(experiment.state, "running", "waiting for the queue_job fan-out")
        self.assertEqual(experiment.result_ids.mapped("strategy"), ["sequential", "threads", "processes", "asyncio"])
        # queue_job strategy: 4 no-op jobs measure the dispatch, then 4 tasks.
        Job = self.env["queue.job"]
        probes = Job.search(
            [("async_lab_experiment_id", "=", experiment.id), ("method_name", "=", "_job_dispatch_probe")]
        )
        self.assertEqual(probes.mapped("method_name"), ["_job_dispatch_probe"] * 4)
        self.assertEqual(set(probes.mapped("channel")), {"root.async_lab.io"})
        for job in probes:
            self.perform_like_runner(job.uuid)
        step = Job.search([("method_name", "=", "_job_fan_out_tasks")], order="id desc", limit=1)
        self.assertEqual(self.perform_like_runner(step.uuid).state, "done")
        fan_out = Job.search([("async_lab_experiment_id", "=", experiment.id), ("method_name", "=", "_job_task")])
        self.assertEqual(len(fan_out), 4)
        self.assertEqual(set(fan_out.mapped("channel")), {"root.async_lab.io"})
        for job in fan_out:
            self.perform_like_runner(job.uuid)
        collect = self.env["queue.job"].search([("method_name", "=", "_job_collect")], order="id desc", limit=1)
        self.assertEqual(collect.state, "pending", "released when the tasks are done")
        self.assertEqual(self.perform_like_runner(collect.uuid).state, "done")
        experiment.invalidate_recordset()
        self.assertEqual(experiment.state, "done")
        rows = {r.strategy: r for r in experiment.result_ids}
        self.assertEqual(set(rows), {"sequential", "threads", "processes", "asyncio", "queue_job"})
        self.assertGreaterEqual(rows["sequential"].wall_seconds, 0.16)
        self.assertGreater(rows["threads"].speedup, 2.0)
        self.assertEqual(rows["threads"].ideal, 4)
        self.assertIn("threads", rows["threads"].verdict)
        self.assertTrue(all(r.verdict for r in rows.values()))
        self.assertEqual(rows["queue_job"].pids, str(os.getpid()))
        self.assertGreater(rows["queue_job"].overhead_seconds, 0)
        self.assertLess(rows["queue_job"].expected, rows["queue_job"].ideal)
        self.assertIn("s of dispatch", rows["queue_job"].verdict)
        self.assertEqual(experiment.environment["mode"], "threaded")
        self.assertIn("cores", experiment.environment_summary)
        latest = self.Experiment.get_latest_results()
        self.assertEqual(latest["id"], experiment.id)
        self.assertEqual(len(latest["results"]), 5)
        # Every job of the run, the orchestration's too, is tagged with the experiment and the run.
        jobs = Job.search([("model_name", "=", "async_lab.experiment"), ("date_created", ">=", run_job.date_created)])
        self.assertEqual(
            sorted(set(jobs.mapped("method_name"))),
            ["_job_collect", "_job_dispatch_probe", "_job_fan_out_tasks", "_job_run", "_job_task"],
        )
        self.assertEqual(jobs.async_lab_experiment_id, experiment)
        self.assertEqual(set(jobs.mapped("async_lab_launch")), {1})
        self.assertEqual(len(jobs.with_user(self.user).read(["name"])), len(jobs), "lab users read them all")
        # A second run's figures leave the first run's jobs out, which stay tagged.
        experiment.with_user(self.manager).action_run()
        self.assertEqual(experiment.run_count, 2)
        self.assertEqual(experiment._fan_out_figures("_job_task")["total"], 0)
        self.assertEqual(jobs.async_lab_experiment_id, experiment)


@tagged("post_install", "-at_install")
class TestRunApi(HttpCase):
    """POST /async_lab/run: the await pattern."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        new_test_user(cls.env, "lab_run_manager", groups="base.group_user,async_lab.async_lab_group_manager")
        new_test_user(cls.env, "lab_run_user", groups="base.group_user,async_lab.async_lab_group_user")

    def post(self, body):
        return self.url_open(
            "/async_lab/run", data=json.dumps(body), headers={"Content-Type": "application/json"}, allow_redirects=False
        )

    def test_run_answers_with_the_measure_and_the_pid(self):
        self.authenticate("lab_run_manager", "lab_run_manager")
        resp = self.post({"workload": "io_sleep", "params": {"ms": 50}, "strategy": "threads", "tasks": 4})
        self.assertEqual(resp.status_code, 200, resp.text)
        data = resp.json()
        self.assertEqual(data["served_by_pid"], os.getpid())
        self.assertEqual((data["strategy"], data["tasks"], data["errors"]), ("threads", 4, 0))
        self.assertGreaterEqual(data["wall_seconds"], 0.05)
        self.assertLess(data["wall_seconds"], 0.19, "4 sleeps overlapped")

    def test_bad_input_and_auth(self):
        self.assertIn(self.post({"workload": "io_sleep", "strategy": "threads"}).status_code, (302, 303, 401, 403))
        self.authenticate("lab_run_user", "lab_run_user")
        self.assertEqual(self.post({"workload": "io_sleep", "strategy": "threads"}).status_code, 403)
        self.authenticate("lab_run_manager", "lab_run_manager")
        for body in (
            {"workload": "io_sleep", "strategy": "queue_job"},
            {"workload": "io_sleep", "strategy": "fibers"},
            {"workload": "nope", "strategy": "threads"},
            {"workload": "io_sleep", "strategy": "threads", "tasks": 65},
            {"workload": "io_sleep", "strategy": "threads", "tasks": "x"},
            {"workload": "cpu_python", "params": {"n": 50_000_000}, "strategy": "sequential", "tasks": 64},
            {"workload": "io_sleep", "params": {"ms": -5}, "strategy": "threads"},
            {"strategy": "threads"},
            {"workload": "io_sleep", "strategy": "threads", "bogus": 1},
        ):
            with self.subTest(body=body):
                resp = self.post(body)
                self.assertEqual(resp.status_code, 400, resp.text)
                self.assertTrue(resp.json()["error"]["message"])


class TestUserImpact(AsyncLabCase):
    """The user-impact preset's pieces; its run is tested on a real server (tests/integration/test_user_impact.py)."""

    def test_api_bounds_and_queue(self):
        Experiment = self.env["async_lab.experiment"].with_user(self.manager)
        with self.assertRaisesRegex(ValidationError, "rate must be"):
            Experiment.api_user_impact("io_sleep", {"ms": 10}, tasks=2, rate=500)
        with self.assertRaisesRegex(ValidationError, "Unknown channel"):
            Experiment.api_user_impact("io_sleep", {"ms": 10}, tasks=2, channel="root.nope")
        with self.assertRaisesRegex(ValidationError, "more than the 120 s"):
            Experiment.api_user_impact("io_sleep", {"ms": 10000}, tasks=64, channel="root.async_lab.serial")
        experiment = Experiment.api_user_impact("io_sleep", {"ms": 10}, tasks=2, rate=3)
        self.assertEqual((experiment.kind, experiment.state, experiment.probe_rate), ("user_impact", "queued", 3))
        self.assertEqual(experiment.api_impact_status()["state"], "queued")
        with self.assertRaises(AccessError):
            self.env["async_lab.experiment"].with_user(self.user).api_user_impact("io_sleep", {"ms": 10}, tasks=2)

    def test_share_of_worker_time_held_by_a_burst(self):
        burst = self.Burst.create({"workload": "noop", "job_count": 2})
        base = fields.Datetime.now().replace(microsecond=0)
        # Two workers over 10 s; one job holds one for 4 s, another from 8 s to past the end (2 s counted).
        self.insert_job("root", started=at(base, 1), done=at(base, 5), async_lab_burst_id=burst.id)
        self.insert_job("root", state="started", started=at(base, 8), async_lab_burst_id=burst.id)
        start = base.replace(tzinfo=timezone.utc).timestamp()
        self.assertEqual(burst._worker_time_share(start, start + 10, 2), 0.3)
        self.assertIsNone(burst._worker_time_share(start, start + 10, 0))

    def test_the_latest_run_is_summarised_for_the_advisor(self):
        experiment = self.env["async_lab.experiment"].create(
            {"kind": "user_impact", "workload": "io_sleep", "ms": 10, "tasks": 4}
        )
        experiment.write(
            {
                "state": "done",
                "finished_at": fields.Datetime.now(),
                "idle_p95_ms": 20.0,
                "burst_p95_ms": 900.0,
                "impact": {
                    "idle": {"requests": 25, "errors": 0, "p50": 0.01, "p95": 0.02},
                    "burst": {"requests": 60, "errors": 1, "p50": 0.3, "p95": 0.9},
                    "p95_ratio": 45.0,
                    "workers_held": 0.66,
                    "http_workers": 3,
                    "root_capacity": 2,
                    "channel": "root.async_lab.io",
                },
            }
        )
        latest = self.env["async_lab.experiment"]._latest_impact()
        self.assertEqual((latest["experiment_id"], latest["requests"], latest["errors"]), (experiment.id, 85, 1))
        self.assertEqual((latest["burst_p95_ms"], latest["workers_held"], latest["root_capacity"]), (900.0, 0.66, 2))

    def test_the_reconcile_leaves_a_measurement_alone_for_its_longest_run(self):
        experiment = self.env["async_lab.experiment"].create(
            {"kind": "user_impact", "workload": "io_sleep", "ms": 10, "tasks": 4}
        )
        experiment.write({"state": "running", "started_at": fields.Datetime.now()})
        experiment.flush_recordset()
        self.Burst._cron_reconcile(now=fields.Datetime.now() + timedelta(minutes=2))
        self.assertEqual(experiment.state, "running")
        self.Burst._cron_reconcile(now=fields.Datetime.now() + timedelta(minutes=10))
        self.assertEqual(experiment.state, "failed")
        self.assertIn("reconcile", experiment.error)

    def test_a_failed_or_cancelled_job_holds_its_worker_until_it_ended(self):
        burst = self.Burst.create({"workload": "noop", "job_count": 2})
        base = fields.Datetime.now().replace(microsecond=0)
        # Two workers over 10 s: a job failed after 2 s, another cancelled at 6 s after 1 s, a third found
        # dead (failed, its end unknown: not counted).
        self.insert_job(
            "root", state="failed", started=at(base, 1), async_lab_date_failed=at(base, 3), async_lab_burst_id=burst.id
        )
        self.insert_job("root", state="failed", started=at(base, 2), async_lab_burst_id=burst.id)
        self.insert_job(
            "root", state="cancelled", started=at(base, 5), date_cancelled=at(base, 6), async_lab_burst_id=burst.id
        )
        start = base.replace(tzinfo=timezone.utc).timestamp()
        self.assertEqual(burst._worker_time_share(start, start + 10, 2), 0.15)

    def test_a_run_counts_the_jobs_it_enqueues_against_the_cap(self):
        # An internal user (the lab's test manager is not one, and cannot read the languages of a translated error).
        Experiment = self.env["async_lab.experiment"].with_user(self.env.ref("base.user_admin"))
        experiment = Experiment.create({"kind": "user_impact", "workload": "io_sleep", "ms": 10, "tasks": 6})
        self.env["ir.config_parameter"].set_param("async_lab.max_active_jobs", 5)
        with self.assertRaisesRegex(TooManyLabJobs, "6 more would pass the limit of 5"):
            experiment.action_run()
        # Its burst's 6 jobs, no job of its own (the strategies' formula would count 1 + 2 × 6 + 2).
        self.env["ir.config_parameter"].set_param("async_lab.max_active_jobs", 6)
        experiment.action_run()
        self.assertEqual(experiment.state, "queued")

    def test_the_probe_is_never_the_superuser(self):
        experiment = self.env["async_lab.experiment"].create(
            {"kind": "user_impact", "workload": "io_sleep", "ms": 10, "tasks": 2}
        )
        self.assertEqual(self.env.uid, SUPERUSER_ID)
        with self.assertRaisesRegex(UserError, "cannot be the superuser"):
            experiment._probe_session()
        with self.assertRaisesRegex(UserError, "cannot be the superuser"):
            experiment.action_run()
        self.assertEqual(experiment.state, "draft")

    def test_the_probe_calls_the_configured_interface_and_a_timeout_is_a_timeout(self):
        experiment = self.env["async_lab.experiment"].create(
            {"kind": "user_impact", "workload": "io_sleep", "ms": 10, "tasks": 2}
        )
        port = config["http_port"]
        for interface, host in (("10.9.8.7", "10.9.8.7"), ("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1")):
            with self.subTest(interface=interface), patch.dict(config.options, http_interface=interface):
                send = experiment._probe_request("x" * 84)
                with patch.object(requests.Session, "post", side_effect=requests.ReadTimeout("slow")) as post:
                    with self.assertRaises(TimeoutError):
                        send()
                self.assertEqual(
                    post.call_args.args[0], "http://%s:%s/web/dataset/call_kw/res.users/read" % (host, port)
                )

    # A run, in this test's transaction: its "own" cursors share it, its commits are savepoints.
    def run_measurement(self, experiment, probe, uid=None):
        """Run ``experiment`` as its thread does, with ``probe`` for lib.impact.probe; return the order of events."""
        events = []
        commit, probe_session = TestCursor.commit, async_lab_experiment.AsyncLabExperiment._probe_session

        def logged_commit(cr):
            events.append("commit")
            return commit(cr)

        def logged_session(rec):
            events.append("session")
            return probe_session(rec)

        def logged_probe(*args, **kwargs):
            events.append("probe")
            return probe(*args, **kwargs)

        self.env.flush_all()
        self.registry.enter_test_mode(self.cr)
        self.addCleanup(self.registry.leave_test_mode)
        with (
            patch.object(TestCursor, "commit", logged_commit),
            patch.object(self.registry["async_lab.experiment"], "_probe_session", logged_session),
            patch.object(impact, "probe", logged_probe),
            patch.object(async_lab_experiment, "STATE_CHECK_SECONDS", 0),
            mute_logger("odoo.addons.async_lab.models.async_lab_experiment"),
        ):
            async_lab_experiment._user_impact_thread(self.cr.dbname, uid or self.manager.id, experiment.id)
        self.env.invalidate_all()
        return events

    def queued_measurement(self, tasks=3):
        experiment = self.env["async_lab.experiment"].create(
            {"kind": "user_impact", "workload": "io_sleep", "ms": 10, "tasks": tasks}
        )
        experiment.write({"state": "queued", "run_count": 1})
        return experiment

    def session_exists(self, sid):
        return os.path.exists(http.root.session_store.get_session_filename(sid))

    def test_a_measurement_stores_its_figures_and_deletes_its_session(self):
        experiment = self.queued_measurement()
        sids = []

        def probe(send, *, rate, done, max_seconds, timeout=0.0):
            experiment.invalidate_recordset()
            sids.append(experiment.sudo().probe_sid)
            self.assertTrue(self.session_exists(sids[-1]), "the session is recorded on the experiment")
            self.assertFalse(done())
            return impact.summary([0.01, 0.02, 5.0], timeouts=1)

        events = self.run_measurement(experiment, probe)
        self.assertEqual(experiment.state, "done", experiment.error)
        self.assertEqual((experiment.burst_p95_ms, experiment.impact["burst"]["timeouts"]), (5000.0, 1))
        self.assertEqual(experiment._impact_summary()["timeouts"], 2)
        self.assertEqual(experiment.burst_id.job_count, 3)
        self.assertFalse(experiment.sudo().probe_sid)
        self.assertFalse(self.session_exists(sids[0]))
        # A fresh transaction between the session and the probe: the job-cap check after it is not 10 s stale.
        self.assertEqual(events[events.index("session") + 1], "commit", events)

    def test_a_measurement_cancelled_during_its_burst_stops_and_stays_cancelled(self):
        experiment = self.queued_measurement()
        seen = []

        def probe(send, *, rate, done, max_seconds, timeout=0.0):
            if max_seconds == async_lab_experiment.IDLE_SECONDS:
                return impact.summary([0.01])
            experiment.invalidate_recordset()
            burst, sid = experiment.burst_id, experiment.sudo().probe_sid
            self.assertEqual(burst.jobs_pending, 3)
            self.assertFalse(done())
            experiment.with_user(self.manager).action_cancel()
            self.env.flush_all()
            seen.extend([burst, sid, done()])
            return impact.summary([0.5])

        self.run_measurement(experiment, probe)
        burst, sid, stopped = seen
        self.assertTrue(stopped, "the probe stops once the experiment is cancelled")
        self.assertEqual(experiment.state, "cancelled")
        self.assertIn("Cancelled by Lab manager", experiment.error)
        self.assertFalse(experiment.impact, "a cancelled measurement is not overwritten by its figures")
        self.assertEqual((burst.jobs_cancelled, burst.jobs_pending), (3, 0))
        self.assertFalse(self.session_exists(sid))

    def test_a_measurement_cancelled_at_rest_launches_no_burst(self):
        experiment = self.queued_measurement()
        bursts = self.Burst.search_count([])
        calls = []

        def probe(send, *, rate, done, max_seconds, timeout=0.0):
            calls.append(max_seconds)
            experiment.with_user(self.manager).action_reset()
            self.env.flush_all()
            self.assertTrue(done())
            return impact.summary([0.01])

        self.run_measurement(experiment, probe)
        self.assertEqual(calls, [async_lab_experiment.IDLE_SECONDS])
        self.assertEqual((experiment.state, experiment.burst_id.id), ("draft", False))
        self.assertEqual(self.Burst.search_count([]), bursts)

    def test_a_measurement_as_the_superuser_fails_with_the_reason(self):
        experiment = self.queued_measurement()
        events = self.run_measurement(experiment, lambda *a, **kw: self.fail("no probe as the superuser"), uid=1)
        self.assertNotIn("probe", events)
        self.assertEqual(experiment.state, "failed")
        self.assertIn("cannot be the superuser", experiment.error)

    def test_cancel_reset_and_the_reconcile_stop_the_burst_and_delete_the_session(self):
        for end in ("cancel", "reset", "reconcile"):
            with self.subTest(end=end):
                experiment = self.queued_measurement(tasks=2).with_user(self.manager)
                burst, _uuids = self.Burst.with_user(self.manager).api_create_and_launch(
                    "io_sleep", {"ms": 10}, count=2
                )
                session = experiment.with_user(self.manager)._probe_session()
                experiment.sudo().write({"state": "running", "burst_id": burst.id, "probe_sid": session.sid})
                experiment.flush_recordset()
                if end == "cancel":
                    experiment.action_cancel()
                elif end == "reset":
                    experiment.action_reset()
                else:
                    self.Burst._cron_reconcile(now=fields.Datetime.now() + timedelta(minutes=10))
                    self.assertIn("its burst's jobs still to run were cancelled", experiment.error)
                burst.invalidate_recordset()
                self.assertEqual((burst.jobs_cancelled, burst.jobs_pending), (2, 0))
                self.assertFalse(self.session_exists(session.sid))
                self.assertFalse(experiment.sudo().probe_sid)
                self.assertEqual(experiment.burst_id, burst)
        form = self.env.ref("async_lab.async_lab_experiment_view_form").arch
        self.assertRegex(form, r'<field name="burst_id" readonly="1"')
        self.assertNotIn("probe_sid", form)

    def test_a_failed_burst_job_records_when_it_failed(self):
        burst = self.Burst.create({"workload": "fail", "job_count": 1, "max_retries": 0})
        burst.action_launch()
        with mute_logger("odoo.addons.queue_job.models.base"):
            job = self.perform_like_runner(burst.job_ids.uuid)
        self.assertEqual(job.state, "failed")
        self.assertGreaterEqual(job.async_lab_date_failed, job.date_started)
