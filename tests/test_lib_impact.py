# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import time

from odoo.tests import BaseCase

from ..lib import impact
from .common import assert_doctests


class TestImpactProbe(BaseCase):
    """The user-impact probe, on a real clock."""

    def test_doctests(self):
        assert_doctests(self, impact, more_than=15)

    def test_steady_rate_and_latency_of_a_quick_server(self):
        result = impact.probe(lambda: time.sleep(0.01), rate=40, done=lambda: False, max_seconds=0.5)
        self.assertGreaterEqual(result["requests"], 15)
        self.assertLessEqual(result["requests"], 21)
        self.assertGreaterEqual(result["p50"], 0.01)
        self.assertLess(result["p50"], 0.1)

    def test_a_stalled_server_shows_as_latency_not_as_fewer_requests(self):
        # 8 requests in flight at most, each 0.2 s: 40 a second can be served, 100 are due.
        # Measured from when each was due, the wait behind the others counts.
        result = impact.probe(lambda: time.sleep(0.2), rate=100, done=lambda: False, max_seconds=0.5)
        self.assertGreater(result["p95"], 0.4)

    def test_errors_are_counted_apart(self):
        def fail():
            raise OSError("refused")

        result = impact.probe(fail, rate=50, done=lambda: False, max_seconds=0.2)
        self.assertEqual(result["errors"], result["requests"])
        self.assertIsNone(result["p50"])

    def test_a_timed_out_request_counts_as_latency_of_at_least_the_timeout(self):
        # Every other request times out: they are half of the latencies, the slow half, and no error.
        answers = iter(range(1000))

        def send():
            if next(answers) % 2:
                time.sleep(0.02)
                raise TimeoutError("read timed out")

        result = impact.probe(send, rate=40, done=lambda: False, max_seconds=0.5, timeout=5)
        self.assertEqual(result["errors"], 0)
        self.assertGreaterEqual(result["timeouts"], 8)
        self.assertEqual(result["p95"], 5.0)
        self.assertLess(result["p50"], 5.0)

    def test_the_probe_calls_the_interface_the_server_listens_on(self):
        self.assertEqual(impact.base_url("0.0.0.0", 8069), "http://127.0.0.1:8069")
        self.assertEqual(impact.base_url("::", 8069), "http://127.0.0.1:8069")
        self.assertEqual(impact.base_url("192.168.1.10", 8069), "http://192.168.1.10:8069")
        self.assertEqual(impact.base_url("fd00::1", 8069), "http://[fd00::1]:8069")

    def test_a_watched_check_runs_at_most_once_an_interval(self):
        calls = []
        stopped = impact.every(lambda: calls.append(1) or len(calls) >= 2, 0.05)
        self.assertFalse(stopped())
        self.assertFalse(stopped())
        self.assertEqual(len(calls), 1)
        time.sleep(0.06)
        self.assertTrue(stopped())
        self.assertTrue(stopped())
        self.assertEqual(len(calls), 2)
