# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import os
import time
from datetime import timedelta
from unittest.mock import patch

import psycopg2

from odoo.exceptions import AccessError
from odoo.sql_db import connection_info_for
from odoo.tests import HttpCase, tagged

from odoo.addons.queue_job.jobrunner.runner import PG_ADVISORY_LOCK_ID

from ..lib import advisor
from ..lib.times import utcnow
from .common import AsyncLabCase, at

GOOD = {
    "workers": 9,
    "max_cron_threads": 1,
    "db_maxconn": 64,
    "limit_time_real": 120,
    "limit_time_cpu": 60,
    "limit_memory_soft": 2048 << 20,
    "limit_memory_hard": 2560 << 20,
    "limit_request": 65536,
    "proxy_mode": True,
    "gevent_port": 8072,
    "server_wide_modules": ["base", "web", "queue_job"],
    "channels": "root:4,root.async_lab:4,root.async_lab.io:3,root.async_lab.cpu:2,root.async_lab.serial:1:sequential",
    "cpu_count": 4,
}


class TestAdvisorModel(AsyncLabCase):
    """async_lab.advisor: each node judged on the configuration its processes report."""

    def setUp(self):
        super().setUp()
        # Only this test's processes are alive.
        self.env.cr.execute("UPDATE async_lab_worker SET state = 'gone' WHERE state != 'gone'")
        self.Worker = self.env["async_lab.worker"]
        self.Advisor = self.env["async_lab.advisor"]

    def report(self, host, pid, master, role="http", vms_mb=600.0, **config):
        self.Worker._upsert(
            {
                "host": host,
                "pid": pid,
                "master_pid": master,
                "role": role,
                "create_time": 1000.0 + pid,
                "now": time.time(),
                "rss_mb": 200.0,
                "vms_mb": vms_mb,
                "db": self.env.cr.dbname,
                "server_config": dict(GOOD, **config),
            },
            self_reported=True,
        )

    def hold_runner_lock(self, pid):
        """The PID of the runner that holds queue_job's runner lock: ``pid``, from a connection named
        as its runner's would be, or this process's if a runner thread of its own holds it already
        (under pytest-odoo, whose HTTP server starts queue_job's runner thread)."""
        _db, info = connection_info_for(self.env.cr.dbname)
        conn = psycopg2.connect(**dict(info, application_name="odoo-%d" % pid))
        self.addCleanup(conn.close)
        with conn.cursor() as cr:
            cr.execute("SELECT pg_try_advisory_lock(%s)", [PG_ADVISORY_LOCK_ID])
            taken = cr.fetchone()[0]
        # This test's transaction may hold a snapshot of pg_stat_activity from before.
        self.env.cr.execute("SELECT pg_stat_clear_snapshot()")
        if taken:
            return pid
        self.env.cr.execute(
            """SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                  AND l.classid::bigint = %s AND l.objid::bigint = %s""",
            [PG_ADVISORY_LOCK_ID >> 32, PG_ADVISORY_LOCK_ID & 0xFFFFFFFF],
        )
        self.assertEqual(self.env.cr.fetchone()[0], "odoo-%d" % os.getpid(), "the runner lock is held elsewhere")
        return os.getpid()

    def test_each_node_is_judged_on_its_own_configuration(self):
        for pid in (101, 102):
            self.report("good-host", pid, 100)
        for pid in (201, 202):
            self.report("bad-host", pid, 200, workers=2, channels="root:2,root.io:5")
        with patch.object(type(self.Advisor), "_runner_alive", return_value=True):
            advice = self.Advisor.get_advice()
        self.assertEqual([h["host"] for h in advice["hosts"]], ["bad-host", "good-host"])
        self.assertEqual(advice["hosts"][0]["http_workers_alive"], 2)
        found = {(f["host"], f["code"]) for f in advice["findings"]}
        self.assertIn(("bad-host", "root_capacity_ge_workers"), found)
        self.assertIn(("bad-host", "channel_above_parent"), found)
        self.assertFalse({code for host, code in found if host == "good-host"}, advice["findings"])
        critical = next(f for f in advice["findings"] if f["code"] == "root_capacity_ge_workers")
        self.assertEqual(critical["severity"], "critical")
        self.assertEqual(critical["evidence"]["http_workers"], 2)
        self.assertEqual(critical["fix"], "channels = root:1,root.io:5")
        self.assertEqual(advice["findings"], advisor.worst_first(advice["findings"]))

    def test_two_nodes_on_one_host_are_told_apart_by_their_master(self):
        self.report("shared", 11, 10)
        self.report("shared", 21, 20, server_wide_modules=["base", "web"])
        advice = self.Advisor.get_advice()
        self.assertEqual([h["host"] for h in advice["hosts"]], ["shared (master 10)", "shared (master 20)"])
        [finding] = [f for f in advice["findings"] if f["code"] == "queue_job_not_server_wide"]
        self.assertEqual(finding["host"], "shared (master 20)")
        self.assertEqual(finding["fix"], "server_wide_modules = base,web,queue_job")

    def test_a_healthy_node_gets_nothing_to_fix_and_what_was_checked(self):
        self.report("good-host", 101, 100)
        self.env.cr.execute("UPDATE ir_cron SET nextcall = now() + interval '1 hour' WHERE active")
        with patch.object(type(self.Advisor), "_runner_alive", return_value=True):
            advice = self.Advisor.get_advice()
        self.assertEqual(advice["findings"], [])
        self.assertEqual(advice["checked"], list(advisor.CHECKED))
        with patch.object(type(self.Advisor), "_runner_alive", return_value=False):
            advice = self.Advisor.get_advice()
        self.assertEqual([f["code"] for f in advice["findings"]], ["runner_not_alive"])

    def test_measured_load_saturated_channel_and_durations_near_the_limit(self):
        self.report("host", 101, 100, channels="root:4,root.slow:1")
        now = utcnow()
        # 30 jobs of 100 s arrived in the last 15 minutes on a channel of capacity 1:
        # 3000 s of work for 900 s of capacity (rho 3.33), and p95 near limit_time_real (120 s).
        for i in range(30):
            created = now - timedelta(seconds=600 - i)
            self.insert_job(
                "root.slow",
                state="done" if i < 5 else "pending",
                created=created,
                enqueued=at(created, 1) if i < 5 else None,
                started=at(created, 2) if i < 5 else None,
                done=at(created, 102) if i < 5 else None,
            )
        advice = self.Advisor.get_advice(window=15, now=now + timedelta(seconds=1))
        by_code = {f["code"]: f for f in advice["findings"]}
        saturated = by_code["channel_saturated"]
        self.assertEqual(saturated["evidence"]["channel"], "root.slow")
        self.assertEqual(saturated["evidence"]["capacity"], 1)
        self.assertEqual(saturated["evidence"]["backlog"], 25)
        self.assertAlmostEqual(saturated["evidence"]["rho"], 30 / 900 * 100, places=1)
        self.assertGreater(saturated["evidence"]["queue_growth_per_minute"], 0)
        # At the proposed capacity (5 slots for 3.3 s of work a second), 25 jobs of 100 s drain in 1500 s.
        self.assertEqual(saturated["evidence"]["proposed_capacity"], 5)
        self.assertAlmostEqual(saturated["evidence"]["drain_seconds"], 1500, delta=5)
        near = by_code["job_duration_near_limit"]
        self.assertEqual((near["evidence"]["channel"], near["evidence"]["limit_time_real"]), ("root.slow", 120))
        self.assertEqual(advice["measured"]["channels"]["root.slow"]["arrivals"], 30)

    def test_late_crons_are_found(self):
        self.report("host", 101, 100)
        cron = self.env.ref("async_lab.async_lab_worker_cron_refresh")
        cron.nextcall = utcnow() - timedelta(hours=2)
        advice = self.Advisor.get_advice()
        late = next(f for f in advice["findings"] if f["code"] == "crons_late")
        self.assertIn(cron.cron_name, [entry["cron"] for entry in late["evidence"]["late"]])
        self.assertEqual(late["fix"], "max_cron_threads = 2")
        self.assertIsNone(late["host"])

    def test_a_cron_is_late_by_its_own_interval_and_for_the_whole_database(self):
        self.report("a", 101, 100, max_cron_threads=1)
        self.report("b", 201, 200, max_cron_threads=2)
        self.env.cr.execute("UPDATE ir_cron SET nextcall = now() + interval '1 hour' WHERE active")
        minutely = self.env.ref("async_lab.async_lab_worker_cron_refresh")
        daily = minutely.copy({"name": "Daily digest", "interval_number": 1, "interval_type": "days"})
        now = utcnow()
        daily.nextcall = now - timedelta(minutes=30)  # a daily cron half an hour behind: on time
        minutely.nextcall = now - timedelta(minutes=10)  # ten calls missed
        advice = self.Advisor.get_advice(now=now)
        [late] = [f for f in advice["findings"] if f["code"] == "crons_late"]
        self.assertEqual([e["cron"] for e in late["evidence"]["late"]], [minutely.cron_name])
        self.assertEqual(late["evidence"]["late"][0]["interval_seconds"], 60)
        self.assertEqual((late["host"], late["evidence"]["max_cron_threads"]), (None, 3))
        self.assertEqual((late["fix"], late["evidence"]["fix_node"]), ("max_cron_threads = 2", "a"))

    def test_channels_are_judged_on_the_node_whose_runner_holds_the_lock(self):
        runner = self.hold_runner_lock(102)
        for pid, role in ((101, "http"), (runner, "jobrunner")):
            self.report("runner-host", pid, 100, role=role)
        # Its runner stands by (it lost the election); its channels would be wrong if it ran.
        for pid, role in ((201, "http"), (202, "jobrunner")):
            self.report("standby-host", pid, 200, role=role, workers=2, channels="root:2,root.io:5")
        with patch.object(type(self.Advisor), "_runner_alive", return_value=True):
            advice = self.Advisor.get_advice()
        self.assertEqual(advice["measured"]["runner_nodes"], ["runner-host"])
        codes = {f["code"] for f in advice["findings"] if f["host"] == "standby-host"}
        self.assertFalse(codes & {"root_capacity_ge_workers", "channel_above_parent"}, advice["findings"])

    def test_without_a_known_lock_holder_the_badge_guesses_only_a_lone_runner(self):
        for pid, role in ((101, "http"), (102, "jobrunner")):
            self.report("blue", pid, 100, role=role)
        nodes = self.Advisor._nodes()
        self.assertEqual(self.Advisor._runner_nodes(nodes, certain=True), ["blue"])
        for pid, role in ((201, "http"), (202, "jobrunner")):
            self.report("green", pid, 200, role=role)
        nodes = self.Advisor._nodes()
        # Two runners, neither seen holding the lock: the advisor weighs both, the badge names none.
        self.assertEqual(self.Advisor._runner_nodes(nodes), ["blue", "green"])
        self.assertEqual(self.Advisor._runner_nodes(nodes, certain=True), [])

    def test_the_user_impact_is_cited_only_when_measured_on_the_same_setting(self):
        self.report("host", 101, 100, workers=3, channels="root:3")
        Experiment = type(self.env["async_lab.experiment"])
        for impact, cited in (
            ({"root_capacity": 3, "http_workers": 3}, True),
            ({"root_capacity": 2, "http_workers": 3}, False),
        ):
            with self.subTest(impact=impact), patch.object(Experiment, "_latest_impact", return_value=impact):
                advice = self.Advisor.get_advice()
                found = next(f for f in advice["findings"] if f["code"] == "root_capacity_ge_workers")
                self.assertEqual("user_impact" in found["evidence"], cited)
                self.assertEqual(advice["measured"]["user_impact"], impact if cited else None)

    def test_jobs_the_watchdog_kills_and_jobs_still_running_are_near_the_limit(self):
        self.report("host", 101, 100, channels="root:4,root.killed:1,root.long:1")
        # A worker the watchdog killed, and the job it ran, requeued: no job of root.killed is ever done.
        self.Worker._upsert(
            {
                "host": "host",
                "pid": 555,
                "master_pid": 100,
                "role": "http",
                "create_time": 1555.0,
                "now": time.time() - 60,  # gone a minute ago
                "exit_reason": "time_limit_real",
                "db": self.env.cr.dbname,
            },
            self_reported=True,
            final=True,
        )
        now = utcnow()
        self.insert_job("root.killed", state="pending", created=at(now, -300), started=at(now, -250), worker_pid=555)
        self.insert_job("root.long", state="started", created=at(now, -200), started=at(now, -110), worker_pid=101)
        # PID 555 again, a process of its own started after the killed one was gone: not a killed job.
        self.insert_job("root.reused", state="pending", created=at(now, -30), started=at(now, -20), worker_pid=555)
        advice = self.Advisor.get_advice(now=now)
        near = {f["evidence"]["channel"]: f for f in advice["findings"] if f["code"] == "job_duration_near_limit"}
        self.assertEqual(near["root.killed"]["severity"], "critical")
        self.assertEqual(near["root.killed"]["evidence"]["killed_by_watchdog"], 1)
        self.assertAlmostEqual(near["root.long"]["evidence"]["running_seconds"], 110, delta=1)
        self.assertNotIn("root.reused", near)

    def test_the_memory_rule_reads_the_workers_virtual_memory(self):
        # RSS 200 MiB, far below the soft limit; but Odoo compares the virtual size.
        self.report("host", 101, 100, vms_mb=2500.0)
        with patch.object(type(self.Advisor), "_runner_alive", return_value=True):
            advice = self.Advisor.get_advice()
        [memory] = [f for f in advice["findings"] if f["code"] == "memory_soft_below_rss"]
        self.assertEqual(memory["evidence"]["vms_max"], 2500 * 1024 * 1024)
        self.assertIn("\nlimit_memory_hard = ", memory["fix"])

    def test_needs_the_lab_user_group(self):
        outsider = self.env["res.users"].create({"name": "Outsider", "login": "advisor_outsider"})
        with self.assertRaises(AccessError):
            self.Advisor.with_user(outsider).get_advice()
        self.assertIn("findings", self.Advisor.with_user(self.user).get_advice())


@tagged("post_install", "-at_install")
class TestAdviceRoute(HttpCase):
    def test_advice_payload_and_bad_window(self):
        self.authenticate("admin", "admin")
        response = self.url_open("/async_lab/advice?window=30")
        self.assertEqual(response.status_code, 200)
        data = response.json()
        self.assertEqual(set(data) - {"measured"}, {"generated_at", "window_minutes", "hosts", "findings", "checked"})
        self.assertEqual(data["window_minutes"], 30)
        for value in ("0", "abc"):
            response = self.url_open("/async_lab/advice?window=%s" % value)
            self.assertEqual((response.status_code, response.json()["error"]["code"]), (400, "invalid"))
