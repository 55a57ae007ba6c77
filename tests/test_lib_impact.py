# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import time

from odoo.tests import BaseCase

from ..lib import impact
from .common import assert_doctests


class TestImpactProbe(BaseCase):
    """The user-impact probe, on a real clock."""

    def test_doctests(self):
        assert_doctests(self, impact, more_than=5)

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
