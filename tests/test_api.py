# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json
import os
import time
from unittest.mock import patch

from odoo import sql_db
from odoo.tests import HttpCase, new_test_user, tagged

from ..controllers import main
from ..lib import tokens, workloads


@tagged("post_install", "-at_install")
class TestJobsApi(HttpCase):
    """The background pattern's routes: 202 + poll, auth, and bad input."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        new_test_user(cls.env, "lab_api_user", groups="base.group_user,async_lab.async_lab_group_user")
        new_test_user(cls.env, "lab_api_manager", groups="base.group_user,async_lab.async_lab_group_manager")
        new_test_user(cls.env, "lab_api_nobody", groups="base.group_user")

    def post(self, body, content_type="application/json"):
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return self.url_open(
            "/async_lab/jobs", data=data, headers={"Content-Type": content_type}, allow_redirects=False
        )

    def assertError(self, resp, status, code=None):
        self.assertEqual(resp.status_code, status, resp.text)
        error = resp.json()["error"]
        self.assertTrue(error["message"])
        if code:
            self.assertEqual(error["code"], code)

    def test_post_answers_202_then_poll(self):
        self.authenticate("lab_api_manager", "lab_api_manager")
        resp = self.post(
            {"workload": "io_sleep", "params": {"ms": 50}, "count": 3, "channel": "root.async_lab.io", "priority": 5}
        )
        self.assertEqual(resp.status_code, 202, resp.text)
        data = resp.json()
        self.assertEqual(len(data["job_uuids"]), 3)
        self.assertEqual(data["status_url"], "/async_lab/jobs/%s" % data["job_uuids"][0])
        burst = self.env["async_lab.burst"].browse(data["burst_id"])
        # Priority 5 would outrank business jobs (10 by default): lab jobs get 10 at most.
        self.assertEqual((burst.workload, burst.ms, burst.job_count, burst.priority), ("io_sleep", 50, 3, 10))
        job = self.url_open(data["status_url"]).json()
        self.assertEqual(job["state"], "pending")
        self.assertEqual(job["priority"], 10)
        self.assertEqual(job["channel"], "root.async_lab.io")
        for key in (
            "date_created",
            "date_enqueued",
            "date_started",
            "date_done",
            "worker_pid",
            "retry",
            "result",
            "exc_name",
            "exc_message",
        ):
            self.assertIn(key, job)
        self.assertIsNone(job["worker_pid"])

    def test_too_many_lab_jobs_get_429(self):
        self.env["ir.config_parameter"].sudo().set_param("async_lab.max_active_jobs", "4")
        self.authenticate("lab_api_manager", "lab_api_manager")
        self.assertEqual(self.post({"workload": "fail", "count": 3}).status_code, 202)
        bursts = self.env["async_lab.burst"].search_count([])
        resp = self.post({"workload": "fail", "count": 2})
        self.assertError(resp, 429, "too_many_jobs")
        self.assertIn("async_lab.max_active_jobs", resp.json()["error"]["message"])
        self.assertEqual(self.env["async_lab.burst"].search_count([]), bursts, "nothing created")
        self.assertEqual(self.post({"workload": "fail", "count": 1}).status_code, 202, "up to the cap")

    def test_bad_inputs_get_4xx_json_and_change_nothing(self):
        self.authenticate("lab_api_manager", "lab_api_manager")
        bursts = self.env["async_lab.burst"].search_count([])
        cases = [
            ({"workload": "io_sleep"}, "text/plain", 415),
            ("{not json", "application/json", 400),
            ("[1, 2]", "application/json", 400),
            ({}, "application/json", 400),
            ({"workload": "nope"}, "application/json", 400),
            ({"workload": "io_sleep", "params": {"ms": 0}}, "application/json", 400),
            ({"workload": "io_sleep", "params": {"ms": "abc"}}, "application/json", 400),
            ({"workload": "io_sleep", "params": {"bogus": 1}}, "application/json", 400),
            ({"workload": "io_sleep", "params": [1]}, "application/json", 400),
            ({"workload": "io_http", "params": {"ms": 5, "url": "http://10.0.0.1/"}}, "application/json", 400),
            ({"workload": "io_sleep", "count": 0}, "application/json", 400),
            ({"workload": "io_sleep", "count": 100000}, "application/json", 400),
            ({"workload": "io_sleep", "count": "3"}, "application/json", 400),
            ({"workload": "io_sleep", "channel": "root.other"}, "application/json", 400),
            ({"workload": "io_sleep", "priority": -1}, "application/json", 400),
            ({"workload": "io_sleep", "extra": 1}, "application/json", 400),
            ({"workload": ["io_sleep"]}, "application/json", 400),
            ({"workload": {"name": "io_sleep"}}, "application/json", 400),
            ({"workload": "io_sleep", "channel": ["root.async_lab.io"]}, "application/json", 400),
            ({"workload": "io_sleep", "channel": {"x": 1}}, "application/json", 400),
            ('{"workload": "io_sleep", "params": %s1%s}' % ("[" * 100000, "]" * 100000), "application/json", 413),
            ('{"workload": "io_sleep", "params": %s1%s}' % ("[" * 5000, "]" * 5000), "application/json", 400),
            ('{"workload": "io_sleep", "params": {"ms": %s1%s}}' % ("[" * 9, "]" * 9), "application/json", 400),
            (b'{"workload": "\xff"}', "application/json", 400),
        ]
        for body, content_type, status in cases:
            with self.subTest(body=body, content_type=content_type):
                self.assertError(self.post(body, content_type), status)
        self.assertEqual(self.env["async_lab.burst"].search_count([]), bursts)

    def test_auth(self):
        # Anonymous: 401 with the JSON error body, never a redirect nor data.
        resp = self.post({"workload": "io_sleep"})
        self.assertError(resp, 401, "unauthorized")
        self.assertNotIn("job_uuids", resp.text)
        for route in ("/async_lab/stats", "/async_lab/jobs/x", "/async_lab/cpu?n=10", "/async_lab/io?ms=1"):
            with self.subTest(route=route):
                self.assertError(self.url_open(route, allow_redirects=False), 401, "unauthorized")
        # Users read; only managers create load.
        self.authenticate("lab_api_user", "lab_api_user")
        self.assertError(self.post({"workload": "io_sleep"}), 403, "forbidden")
        self.assertEqual(self.url_open("/async_lab/stats").status_code, 200)
        self.authenticate("lab_api_nobody", "lab_api_nobody")
        self.assertError(self.url_open("/async_lab/stats"), 403, "forbidden")

    def test_job_lookup(self):
        self.authenticate("lab_api_user", "lab_api_user")
        self.assertError(self.url_open("/async_lab/jobs/does-not-exist"), 404, "not_found")

    def test_stats_payload(self):
        self.authenticate("lab_api_user", "lab_api_user")
        data = self.url_open("/async_lab/stats?window=30").json()
        self.assertEqual(data["window_minutes"], 30)
        self.assertEqual(data, self.env["async_lab.stats"].get_stats(30, now=_parse(data["generated_at"])))
        self.assertError(self.url_open("/async_lab/stats?window=0"), 400)
        self.assertError(self.url_open("/async_lab/stats?window=abc"), 400)
        # Up to a week, read from the rollups beyond an hour.
        week = self.url_open("/async_lab/stats?window=10080").json()
        self.assertEqual((week["window_minutes"], week["latency_method"]), (10080, "histogram"))
        self.assertEqual(week["series"]["step_minutes"], 60)
        self.assertError(self.url_open("/async_lab/stats?window=10081"), 400)
        # The advisor judges a day at most.
        self.assertError(self.url_open("/async_lab/advice?window=1441"), 400)


@tagged("post_install", "-at_install")
class TestLoadTargets(HttpCase):
    def test_io_and_cpu(self):
        self.authenticate("admin", "admin")
        data = self.url_open("/async_lab/io?ms=30").json()
        self.assertEqual((data["pid"], data["ms"]), (os.getpid(), 30))
        self.assertGreaterEqual(data["elapsed_ms"], 30)
        data = self.url_open("/async_lab/cpu?n=1000").json()
        self.assertEqual(data["n"], 1000)
        for route in (
            "/async_lab/io?ms=0",
            "/async_lab/io?ms=100000",
            "/async_lab/cpu?n=x",
            "/async_lab/cpu?n=1000000000",
            "/async_lab/io?ms=5001",
            "/async_lab/io?ms=1&bogus=1",
        ):
            resp = self.url_open(route)
            self.assertEqual(resp.status_code, 400, route)
            self.assertIn("error", resp.json())

    def test_load_targets_are_for_managers(self):
        new_test_user(self.env, "lab_load_user", groups="base.group_user,async_lab.async_lab_group_user")
        self.authenticate("lab_load_user", "lab_load_user")
        for route in ("/async_lab/io?ms=1", "/async_lab/cpu?n=10"):
            resp = self.url_open(route)
            self.assertEqual(resp.status_code, 403, route)
            self.assertEqual(resp.json()["error"]["code"], "forbidden")

    def test_cpu_is_bounded_in_seconds_on_this_machine(self):
        self.authenticate("admin", "admin")
        with patch.object(main, "calibration", return_value={workloads.CPU_PYTHON_RATE: 1000.0}):
            self.assertEqual(self.url_open("/async_lab/cpu?n=4000").status_code, 200)
            resp = self.url_open("/async_lab/cpu?n=6000")  # 6 s at 1000 iterations/s
            self.assertEqual(resp.status_code, 400)
            self.assertIn("at most 5000", resp.json()["error"]["message"])

    def test_per_user_limit_of_load_calls_across_workers(self):
        """Slots held by other connections (other workers) are seen: 429 past the limit."""
        self.authenticate("admin", "admin")
        admin = self.env.ref("base.user_admin").id
        self.env["ir.config_parameter"].sudo().set_param(main.LOAD_CALLS_PARAM, "2")
        others = [sql_db.db_connect(self.env.cr.dbname).cursor() for _ in range(2)]
        try:
            self.assertTrue(main.take_load_slot(others[0], admin, 2))
            self.assertTrue(main.take_load_slot(others[1], admin, 2))
            for route in ("/async_lab/io?ms=1", "/async_lab/cpu?n=10"):
                resp = self.url_open(route)
                self.assertEqual(resp.status_code, 429, route)
                self.assertEqual(resp.json()["error"]["code"], "too_many_requests")
            self.assertTrue(main.take_load_slot(others[0], admin + 100000, 2), "another user has slots of its own")
            others[0].rollback()  # a call ends: its slot is free again
            self.assertEqual(self.url_open("/async_lab/io?ms=1").status_code, 200)
        finally:
            for cr in others:
                cr.close()

    def test_io_self_calls_are_signed(self):
        resp = self.url_open("/async_lab/io?ms=1", allow_redirects=False)
        self.assertEqual(resp.status_code, 401)
        secret = self.env["ir.config_parameter"].sudo().get_param("database.secret")
        key = tokens.derive_key(secret, self.env.cr.dbname)

        def call(ms, token):
            return self.url_open("/async_lab/io?ms=%s" % ms, headers={tokens.HEADER: token}, allow_redirects=False)

        self.assertEqual(call(1, tokens.sign(key, "io", {"ms": 1}, now=time.time(), ttl=5)).status_code, 200)
        refused = {
            "expired": (1, tokens.sign(key, "io", {"ms": 1}, now=time.time() - 60, ttl=5)),
            "an hour long": (1, tokens.sign(key, "io", {"ms": 1}, now=time.time(), ttl=3600)),
            "other parameters": (2, tokens.sign(key, "io", {"ms": 1}, now=time.time(), ttl=5)),
            "other database": (
                1,
                tokens.sign(tokens.derive_key(secret, "other"), "io", {"ms": 1}, now=time.time(), ttl=5),
            ),
            "not ASCII": (1, "%d.\u00e9\u00e9" % (time.time() + 5)),
            "garbage": (1, "garbage"),
        }
        for case, (ms, token) in refused.items():
            with self.subTest(case=case):
                resp = call(ms, token.encode("utf-8").decode("latin-1"))
                self.assertEqual(resp.status_code, 401, resp.text)
                self.assertEqual(resp.json()["error"]["code"], "unauthorized")
        # The old way, a token in the URL, is no way in any more.
        legacy = tokens.sign(key, "io", {"ms": 1}, now=time.time(), ttl=5)
        self.assertEqual(self.url_open("/async_lab/io?ms=1&token=%s" % legacy).status_code, 400)


def _parse(iso_text):
    from datetime import datetime

    return datetime.fromisoformat(iso_text.rstrip("Z"))
