# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Random and malformed input to every route: never a 500, always the error shape.

Property-based (hypothesis): random JSON bodies and query strings, as a Manager
(who reaches every code path). Example counts stay moderate to keep the suite
fast; schemathesis does the same from the OpenAPI description against a real
prefork server (tests/integration/test_openapi_schemathesis.py).
"""

import json
import re
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from ..controllers import main, openapi
from ..lib import strategies, workloads
from .common import assert_doctests
from .test_access import ROUTES

EXAMPLES = 50
#: What a JSON-RPC call may answer for bad input (anything else is a crash).
USER_ERRORS = {"odoo.exceptions.ValidationError", "odoo.exceptions.UserError", "odoo.exceptions.AccessError"}
JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
#: Values that sometimes pass validation (small, so that valid calls stay quick).
SMALL = st.integers(-3, 30) | st.sampled_from(["1", "abc", "", " 7 ", "1e3", "١٢"])
KNOWN_KEYS = ["workload", "params", "count", "channel", "priority", "strategy", "tasks", "ms", "n", "window", "db"]
NAMES = st.sampled_from(list(workloads.WORKLOADS) + list(strategies.LOCAL_STRATEGIES) + ["root.async_lab.io"])
BODIES = JSON_VALUES | st.dictionaries(
    st.sampled_from(KNOWN_KEYS) | st.text(max_size=6),
    NAMES | SMALL | JSON_VALUES | st.dictionaries(st.sampled_from(["ms", "n", "mb", "k", "url"]), SMALL | JSON_VALUES),
    max_size=5,
)
QUERIES = st.dictionaries(
    st.sampled_from(KNOWN_KEYS) | st.text(min_size=1, max_size=6), SMALL.map(str) | st.text(max_size=12), max_size=3
)


def with_query(path, query):
    return "%s?%s" % (path, urlencode(query)) if query else path


@tagged("post_install", "-at_install")
class TestFuzz(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        new_test_user(cls.env, "fuzz_manager", groups="base.group_user,async_lab.async_lab_group_manager")

    def setUp(self):
        super().setUp()
        self.authenticate("fuzz_manager", "fuzz_manager")

    def assertWellFormed(self, resp, what):
        self.assertLess(resp.status_code, 500, "%s: %s" % (what, resp.text[:500]))
        if resp.status_code >= 400:
            error = resp.json()["error"]
            self.assertIsInstance(error["code"], str, what)
            self.assertIsInstance(error["message"], str, what)
            self.assertTrue(error["message"], what)

    def test_random_input_to_every_route(self):
        for (rule, method), (_needed, path, body) in ROUTES.items():
            path = path.split("?")[0].format(job_uuid="00000000-0000-0000-0000-000000000000", impact_id=0, control_id=0)
            with self.subTest(route=rule, method=method):
                if body == "jsonrpc":
                    self._fuzz_jsonrpc(path)
                elif method == "POST":
                    self._fuzz_body(path)
                else:
                    self._fuzz_query(path)

    def _fuzz_body(self, path):
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(body=BODIES, query=QUERIES)
        def check(body, query):
            resp = self.url_open(
                with_query(path, query), data=json.dumps(body), headers={"Content-Type": "application/json"}
            )
            self.assertWellFormed(resp, "%s %r %r" % (path, body, query))

        check()

    def _fuzz_query(self, path):
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(query=QUERIES)
        def check(query):
            resp = self.url_open(with_query(path, query), allow_redirects=False)
            self.assertWellFormed(resp, "%s %r" % (path, query))

        check()

    def _fuzz_jsonrpc(self, path):
        """The web client's JSON-RPC call: bad input is a user error (ValidationError...), never a crash."""

        @settings(max_examples=EXAMPLES // 2, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(params=st.dictionaries(st.sampled_from(["window", "lane_minutes"]), SMALL | JSON_VALUES))
        def check(params):
            resp = self.url_open(
                path,
                data=json.dumps({"jsonrpc": "2.0", "method": "call", "params": params}),
                headers={"Content-Type": "application/json"},
            )
            self.assertLess(resp.status_code, 500)
            error = resp.json().get("error")
            if error:
                self.assertTrue({"code", "message"} <= set(error), error)
                self.assertIn(error["data"]["name"], USER_ERRORS, error["data"].get("debug", "")[-1500:])

        with mute_logger("odoo.http"):  # Odoo logs each user error of a JSON-RPC call as a warning
            check()

    def test_malformed_bodies(self):
        """Bodies that are not JSON objects, too deep, too large (chunked too), or of another type."""
        huge = b'{"workload": "' + b"x" * (main.MAX_BODY_BYTES + 10) + b'"}'
        cases = {
            "list workload": (json.dumps({"workload": ["io_sleep"], "strategy": "sequential"}), 400),
            "object workload": (json.dumps({"workload": {"a": 1}, "strategy": "sequential"}), 400),
            "deep nesting": ("[" * 30000 + "]" * 30000, 400),
            "not UTF-8": (b'{"workload": "\xff\xfe"}', 400),
            "chunked, over the limit": (None, 413),
        }
        for path in ("/async_lab/jobs", "/async_lab/run"):
            for case, (data, status) in cases.items():
                with self.subTest(path=path, case=case):
                    if data is None:  # a generator: requests sends it chunked, without Content-Length
                        data = (chunk for chunk in [huge[:40000], huge[40000:]])
                    resp = self.url_open(path, data=data, headers={"Content-Type": "application/json"})
                    self.assertEqual(resp.status_code, status, resp.text[:300])
                    self.assertWellFormed(resp, case)

    def test_doctests(self):
        assert_doctests(self, main)

    def test_openapi_describes_every_route(self):
        described = self.url_open("/async_lab/openapi.json").json()
        self.assertEqual(described, json.loads(json.dumps(openapi.spec(max_io_ms=main.LOAD_CALL_MAX_SECONDS * 1000))))
        self.assertTrue(described["openapi"].startswith("3."))
        # Not described: the web client's JSON-RPC call, and the catch-all 404.
        routes = {
            (re.sub(r"<\w+:(\w+)>", r"{\1}", rule), method.lower())
            for rule, method in ROUTES
            if ROUTES[(rule, method)][2] != "jsonrpc" and method != "*"
        }
        paths = {(path, method) for path, operations in described["paths"].items() for method in operations}
        self.assertEqual(paths, routes)
