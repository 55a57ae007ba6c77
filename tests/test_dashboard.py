# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
import os
import socket
import time
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import BaseCase, HttpCase, new_test_user, tagged
from odoo.tools import SQL

from odoo.addons.web.tests.test_js import qunit_error_checker

from ..lib import dashboard as lib_dashboard
from ..lib import theory
from ..models import async_lab_dashboard
from .common import AsyncLabCase, BurstJobRunner, assert_doctests, heartbeat_snapshot

IO = "root.async_lab.io"
SERIAL = "root.async_lab.serial"
DASHBOARD_URL = "/web?async_lab_pid=%d#action=async_lab.async_lab_dashboard_action"


def ago(now, seconds):
    return now - timedelta(seconds=seconds)


class TestDashboardLib(BaseCase):
    """lib/dashboard.py: the process map and lanes, without a database."""

    def test_doctests(self):
        assert_doctests(self, lib_dashboard, more_than=15)


@tagged("at_install", "-post_install")
class TestDashboardData(AsyncLabCase):
    """get_data: one dict from the stats method, the registry and a bounded timeline."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.cr.execute("DELETE FROM queue_job")
        cls.Dashboard = cls.env["async_lab.dashboard"]
        cls.nobody = new_test_user(cls.env, "lab_dash_nobody", groups="base.group_user")

    def test_shape_and_single_source_of_figures(self):
        now = fields.Datetime.now()
        self.insert_job(
            IO, created=ago(now, 30), enqueued=ago(now, 29), started=ago(now, 20), done=ago(now, 10), worker_pid=4242
        )
        with patch.object(fields.Datetime, "now", return_value=now):
            data = self.Dashboard.get_data(window=60)
        self.assertEqual(
            set(data),
            {
                "stats",
                "processes",
                "runner_threads",
                "swimlanes",
                "lab",
                "me",
                "labels",
                "burst_form",
                "banners",
                "constants",
            },
        )
        # The client mirrors no constant of the server: it reads them here.
        self.assertEqual(
            data["constants"],
            {
                "default_lane_minutes": async_lab_dashboard.DEFAULT_LANE_MINUTES,
                "max_lane_minutes": async_lab_dashboard.MAX_LANE_MINUTES,
                "gone_visible_seconds": lib_dashboard.GONE_VISIBLE,
            },
        )
        self.assertEqual(data["swimlanes"]["minutes"], async_lab_dashboard.DEFAULT_LANE_MINUTES)
        # The job figures are get_stats' own, not recomputed.
        self.assertEqual(data["stats"], self.env["async_lab.stats"].get_stats(60, now))
        self.assertEqual(data["stats"]["totals"]["done_window"], 1)
        self.assertEqual(data["me"]["pid"], os.getpid())
        self.assertTrue(data["me"]["is_manager"])
        json.dumps(data)  # one JSON call: plain data only

    def test_process_map_of_this_threaded_server(self):
        self.env["async_lab.worker"]._cron_refresh()
        hosts = {host["host"]: host for host in self.Dashboard.get_data()["processes"]}
        servers = {server["master_pid"]: server for server in hosts[socket.gethostname()]["servers"]}
        server = servers[os.getpid()]
        self.assertEqual(server["mode"], "threaded")
        self.assertEqual(server["master"]["role"], "threaded")
        self.assertEqual(server["master"]["state"], "alive")
        self.assertTrue(server["master"]["threads"], "threaded mode lists the threads")
        self.assertGreaterEqual(server["master"]["rss_mb"], 1)

    def test_process_map_groups_children_and_attaches_respawns(self):
        Worker = self.env["async_lab.worker"]
        now = fields.Datetime.now()

        def worker(pid, role, **vals):
            defaults = {
                "host": "dash-host",
                "pid": pid,
                "master_pid": 900,
                "role": role,
                "create_time": pid,
                "started_at": now - timedelta(minutes=5),
                "last_seen": now,
            }
            return Worker.create(dict(defaults, **vals))

        worker(900, "master")
        old = worker(901, "http", state="gone", gone_at=now - timedelta(seconds=30), exit_reason="memory_limit")
        new = worker(903, "http", started_at=now - timedelta(seconds=25), replaces_id=old.id)
        worker(902, "jobrunner")
        worker(904, "gevent", state="stale")
        worker(905, "http", state="gone", gone_at=now - timedelta(seconds=lib_dashboard.GONE_VISIBLE + 60))
        self.env["async_lab.respawn"].create(
            {
                "host": "dash-host",
                "master_pid": 900,
                "role": "http",
                "old_pid": 901,
                "new_pid": 903,
                "old_worker_id": old.id,
                "new_worker_id": new.id,
                "gone_at": now - timedelta(seconds=30),
                "respawned_at": now - timedelta(seconds=25),
                "reason": "memory_limit",
            }
        )
        Worker.flush_model()
        (host,) = [h for h in self.Dashboard.get_data()["processes"] if h["host"] == "dash-host"]
        (server,) = host["servers"]
        self.assertEqual((server["mode"], server["master"]["pid"], server["alive"]), ("prefork", 900, 4))
        children = [(c["pid"], c["role"], c["state"]) for c in server["children"]]
        self.assertEqual(
            children,
            [(903, "http", "alive"), (901, "http", "gone"), (902, "jobrunner", "alive"), (904, "gevent", "stale")],
        )
        fresh, gone = server["children"][:2]
        self.assertTrue(fresh["is_new"])
        self.assertEqual((fresh["respawn"]["old_pid"], fresh["respawn"]["reason"]), (901, "memory_limit"))
        self.assertAlmostEqual(gone["gone_for"], 30, delta=5)
        self.assertEqual(gone["exit_reason"], "memory_limit")
        self.assertIsNone(server["children"][2]["respawn"])

    def job_ago(self, channel, seconds, **extra):
        """A job whose created/enqueued/started/done times are ``seconds`` ago (None: unset)."""
        now = fields.Datetime.now()
        dates = [ago(now, s) if s is not None else None for s in seconds]
        stages = dict(zip(("created", "enqueued", "started", "done"), dates, strict=True))
        return self.insert_job(channel, **stages, **extra)

    def test_swimlanes_are_bounded_in_time(self):
        burst = self.Burst.create({"workload": "io_sleep", "job_count": 1, "channel": IO})
        recent = self.job_ago(IO, (70, 65, 60, 50), worker_pid=11, async_lab_burst_id=burst.id)
        serial = self.job_ago(SERIAL, (70, 65, 40, 30), worker_pid=12)
        running = self.job_ago(IO, (20, 19, 15, None), state="started", worker_pid=12)
        failed = self.job_ago(IO, (20, 19, 18, None), state="failed", worker_pid=11)
        self.job_ago(IO, (1800, 1800, 1800, 1790), worker_pid=11)
        lanes = self.Dashboard.get_data(lane_minutes=10)["swimlanes"]
        self.assertEqual(lanes["minutes"], 10)
        self.assertFalse(lanes["truncated"])
        by_pid = {lane["pid"]: {job["id"]: job for job in lane["jobs"]} for lane in lanes["lanes"]}
        self.assertEqual(set(by_pid), {11, 12})
        self.assertEqual(set(by_pid[11]), {recent, failed}, "the job of 30 minutes ago is out of the timeline")
        self.assertEqual(set(by_pid[12]), {serial, running})
        self.assertIsNone(by_pid[12][running]["end"], "a running job has no end yet")
        self.assertEqual(by_pid[11][failed]["end"], by_pid[11][failed]["start"], "no end is known: a mark")
        self.assertEqual(by_pid[12][serial]["channel"], SERIAL)
        # Users see the descriptions of burst jobs only; other jobs may hold business data.
        user_lanes = self.Dashboard.with_user(self.user).get_data()["swimlanes"]["lanes"]
        names = {job["id"]: job["name"] for lane in user_lanes for job in lane["jobs"]}
        self.assertEqual(names[recent], "test job")
        self.assertIsNone(names[serial])

    def test_swimlanes_are_bounded_in_count(self):
        for second in range(1, 9):
            self.job_ago(IO, (second, second, second, second), worker_pid=7)
        with patch.object(async_lab_dashboard, "MAX_BARS", 5):
            lanes = self.Dashboard.get_data()["swimlanes"]
        (lane,) = lanes["lanes"]
        self.assertEqual(len(lane["jobs"]), 5)
        self.assertTrue(lanes["truncated"])

    def test_timeline_query_uses_the_indexes(self):
        """On a big queue_job table the timeline reads the last minutes through indexes, never a scan."""
        self.env.cr.execute(
            """INSERT INTO queue_job (uuid, state, channel, priority, model_name, method_name, name, retry,
                                      max_retries, date_created, date_enqueued, date_started, date_done)
               SELECT md5(random()::text), 'done', %s, 10, 'async_lab.burst', '_job_task', 'old job', 1, 5,
                      t, t, t, t
                 FROM generate_series(1, 20000) AS i,
                      LATERAL (SELECT (now() at time zone 'UTC') - i * interval '30 seconds') AS d(t)""",
            [IO],
        )
        self.env.cr.execute("ANALYZE queue_job")
        since = fields.Datetime.now() - timedelta(minutes=10)
        query = self.Dashboard._timeline_query(self.env["async_lab.stats"]._known_channels(), since)
        self.env.cr.execute(SQL("EXPLAIN %s", query))
        plan = "\n".join(row[0] for row in self.env.cr.fetchall())
        self.assertIn("queue_job_channel_date_done_date_created_index", plan)
        self.assertNotIn("Seq Scan", plan)

    def test_bad_input_and_rights(self):
        for window, lanes in ((0, 10), (60, 0), (60, 61), ("abc", 10), (None, 10), (True, 10)):
            with self.subTest(window=window, lanes=lanes), self.assertRaises(ValidationError):
                self.Dashboard.get_data(window=window, lane_minutes=lanes)
        with self.assertRaises(AccessError):
            self.Dashboard.with_user(self.nobody).get_data()
        data = self.Dashboard.with_user(self.user).get_data()
        self.assertFalse(data["me"]["is_manager"])
        with self.assertRaises(AccessError):
            self.Dashboard.with_user(self.user).launch_burst("io_sleep", 2, IO, {"ms": 10})

    def test_launch_burst(self):
        result = self.Dashboard.with_user(self.manager).launch_burst("io_sleep", "2", IO, {"ms": 10})
        self.assertEqual(set(result), {"burst_id", "job_uuids", "channel"})
        burst = self.Burst.browse(result["burst_id"])
        self.assertEqual((burst.workload, burst.ms, burst.job_count, burst.channel), ("io_sleep", 10, 2, IO))
        self.assertEqual(sorted(result["job_uuids"]), sorted(burst.job_ids.mapped("uuid")))
        for args in (
            ("nope", 2, IO, None),
            ("io_sleep", 0, IO, None),
            ("io_sleep", 2, "root.nope", None),
            ("io_sleep", 2, IO, {"ms": 10**6}),
            ("io_sleep", 2, IO, [1]),
        ):
            with self.subTest(args=args), self.assertRaises(ValidationError):
                self.Dashboard.with_user(self.manager).launch_burst(*args)

    def test_launch_errors_name_the_fields_the_form_shows(self):
        form = self.Dashboard.get_data()["burst_form"]
        (io_sleep,) = [w for w in form["workloads"] if w["name"] == "io_sleep"]
        self.assertEqual(io_sleep["params"][0]["label"], "Milliseconds")
        launch = self.Dashboard.with_user(self.manager).launch_burst
        with self.assertRaisesRegex(ValidationError, r"^Jobs is empty: enter a whole number between 1 and \d+"):
            launch("io_sleep", "", IO, {"ms": 10})
        with self.assertRaisesRegex(ValidationError, r"^Jobs must be an integer between 1 and \d+, got 0"):
            launch("io_sleep", 0, IO, {"ms": 10})
        with self.assertRaisesRegex(ValidationError, r"^Milliseconds must be an integer between 1 and 10000"):
            launch("io_sleep", 2, IO, {"ms": 10**6})

    def test_burst_form_offers_only_what_bursts_store(self):
        form = self.Dashboard.get_data()["burst_form"]
        names = [w["name"] for w in form["workloads"]]
        self.assertIn("io_sleep", names)
        self.assertNotIn("flaky", names)  # its "attempt" parameter is not a burst field
        io_sleep = form["workloads"][names.index("io_sleep")]
        self.assertEqual((io_sleep["channel"], [p["name"] for p in io_sleep["params"]]), (IO, ["ms"]))

    def test_a_node_that_went_silent_stays_on_the_map_as_stopped_reporting(self):
        Worker = self.env["async_lab.worker"]
        now = time.time()
        for host, reason in (("vanished", "killed"), ("stopped", "server_stop")):
            Worker._upsert(
                heartbeat_snapshot(self.env, host=host, pid=7000, master_pid=7000, role="master", now=now - 900),
                self_reported=False,
            )
            self.env.cr.execute(
                "UPDATE async_lab_worker SET state = 'gone', gone_at = last_seen, exit_reason = %s WHERE host = %s",
                [reason, host],
            )
        Worker.invalidate_model()
        hosts = {h["host"]: h for h in self.Dashboard.get_data(window=60)["processes"]}
        self.assertNotIn("stopped", hosts)  # it said it stopped: gone from the map after GONE_VISIBLE
        (server,) = hosts["vanished"]["servers"]
        self.assertEqual((server["master"]["pid"], server["stopped_reporting"]), (7000, True))


@tagged("post_install", "-at_install")
class TestDashboardRoute(HttpCase):
    """/async_lab/dashboard/data: the dashboard's one JSON-RPC call."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        new_test_user(cls.env, "lab_route_user", groups="base.group_user,async_lab.async_lab_group_user")
        new_test_user(cls.env, "lab_route_nobody", groups="base.group_user")

    def call(self, **params):
        resp = self.url_open(
            "/async_lab/dashboard/data",
            data=json.dumps({"params": params}),
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(resp.status_code, 200, resp.text)
        return resp.json()

    def test_user_gets_the_data(self):
        self.authenticate("lab_route_user", "lab_route_user")
        result = self.call(window=30, lane_minutes=5)["result"]
        self.assertEqual(result["stats"]["window_minutes"], 30)
        self.assertEqual(result["swimlanes"]["minutes"], 5)
        self.assertFalse(result["me"]["is_manager"])
        self.assertEqual(result["me"]["pid"], os.getpid())

    def test_bounds_and_access(self):
        error = self.call()["error"]
        self.assertEqual(error["data"]["name"], "odoo.http.SessionExpiredException")
        self.authenticate("lab_route_nobody", "lab_route_nobody")
        error = self.call()["error"]
        self.assertEqual(error["data"]["name"], "odoo.exceptions.AccessError")
        self.authenticate("lab_route_user", "lab_route_user")
        for params in ({"window": 10**6}, {"lane_minutes": 0}, {"window": "x"}):
            with self.subTest(params=params):
                error = self.call(**params)["error"]
                self.assertEqual(error["data"]["name"], "odoo.exceptions.ValidationError")
                self.assertIn("must be an integer between", error["data"]["message"])


@tagged("post_install", "-at_install")
class TestDashboardTour(HttpCase):
    """The dashboard in real Chromium: process map, a burst launched from the page, its jobs done."""

    def test_dashboard_tour(self):
        self.env["async_lab.worker"]._cron_refresh()  # records this (threaded) server process
        pid = os.getpid()
        runner = BurstJobRunner(self.registry)
        runner.run_tour(self, DASHBOARD_URL % pid, "async_lab_dashboard_tour", timeout=180)
        self.assertFalse(runner.errors, "\n".join(runner.errors))
        jobs = self.env["queue.job"].search([("async_lab_burst_id", "!=", False)])
        self.assertEqual(len(jobs), 3)
        self.assertEqual(set(jobs.mapped("state")), {"done"})
        self.assertEqual(set(jobs.mapped("worker_pid")), {pid})
        self.assertEqual(set(runner.performed), set(jobs.mapped("uuid")))


class LabRunner(BurstJobRunner):
    """The test job runner of bursts, which also finishes a queued experiment.

    (Without running its strategies: the tour checks that its form follows
    its state live, not the measures.)
    """

    #: Seconds an experiment stays queued before this runner finishes it: the
    #: browser has time to show it queued, as a real run would be (finished at
    #: once, the form could reload straight to Done, and the tour's check of
    #: its live state would race with this thread).
    HOLD_SECONDS = 2.0

    def __init__(self, registry, interval=0.2):
        super().__init__(registry, interval)
        self._queued_since = {}  # experiment id -> when this runner first saw it queued

    def _pending(self):
        self.env.cr.execute("SELECT id FROM async_lab_experiment WHERE state = 'queued'")
        now = time.monotonic()
        seen = self._queued_since
        due = [eid for (eid,) in self.env.cr.fetchall() if now - seen.setdefault(eid, now) >= self.HOLD_SECONDS]
        if due:
            self.env.cr.execute(
                "UPDATE async_lab_experiment SET state = 'done', finished_at = now() AT TIME ZONE 'utc'"
                " WHERE id = ANY(%s)",
                [due],
            )
            for eid in due:
                seen.pop(eid)
        return super()._pending()


@tagged("post_install", "-at_install")
class TestClickThroughTour(HttpCase):
    """What a user clicks, in Chromium: launch, watch, open a count, open a job, re-run an experiment."""

    def test_click_through(self):
        self.env["async_lab.worker"]._cron_refresh()
        experiment = self.env["async_lab.experiment"].create(
            {
                "name": "CPU-bound, GIL released",
                "workload": "cpu_gil_free",
                "mb": 32,
                "tasks": 8,
                "state": "done",
                "finished_at": fields.Datetime.now(),
            }
        )
        for sequence, (strategy, wall, speedup) in enumerate((("sequential", 0.44, 1.0), ("processes", 0.2, 2.2))):
            self.env["async_lab.experiment.result"].create(
                {
                    "experiment_id": experiment.id,
                    "sequence": sequence,
                    "strategy": strategy,
                    "kind": "cpu_nogil",
                    "tasks": 8,
                    "wall_seconds": wall,
                    "speedup": speedup,
                    "ideal": 1 if strategy == "sequential" else 2,
                    "efficiency": speedup / (1 if strategy == "sequential" else 2),
                    "verdict": theory.verdict(
                        strategy, "cpu_nogil", speedup, 1 if strategy == "sequential" else 2, 2, baseline_cpu_share=0.35
                    ),
                }
            )
        runner = LabRunner(self.registry)
        runner.run_tour(self, DASHBOARD_URL % os.getpid(), "async_lab_click_through_tour", timeout=240)
        self.assertFalse(runner.errors, "\n".join(runner.errors))
        jobs = self.env["queue.job"].search([("async_lab_burst_id", "!=", False)])
        self.assertEqual(sorted(jobs.mapped("state")), ["done"] * 3 + ["failed"] * 2)
        self.assertEqual(experiment.state, "done")


@tagged("post_install", "-at_install")
class TestDashboardQUnit(HttpCase):
    """The QUnit tests of static/src/utils (formatting, lane packing)."""

    def test_utils_qunit(self):
        # QUnit fails the run when the filter matches no test, and the
        # checker fails it when any assertion fails.
        self.browser_js(
            "/web/tests?filter=async_lab", "", "", login="admin", timeout=600, error_checker=qunit_error_checker
        )
