# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import asyncio
import hashlib
import os
import pickle
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import psycopg2
import requests

from odoo.sql_db import connection_info_for
from odoo.tests import BaseCase
from odoo.tests.common import get_db_name

from ..lib import workloads
from ..lib.workloads import TransientError, WorkloadError, WorkloadFailure
from .common import assert_doctests


class _SlowHandler(BaseHTTPRequestHandler):
    """``/io?ms=N`` answers 200 after N ms; any other path answers 404."""

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path != "/io":
            self.send_error(404)
            return
        time.sleep(int(parse_qs(url.query)["ms"][0]) / 1000)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """Keep the test log quiet."""


class _SlowServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that gave up early (the timeout test) is expected."""


class TestWorkloads(BaseCase):
    """lib/workloads.py: the registry, validation, and each workload for real."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = _SlowServer(("127.0.0.1", 0), _SlowHandler)
        server_thread = threading.Thread(target=cls.server.serve_forever, name="async_lab_test_http")
        server_thread.start()
        cls.addClassCleanup(server_thread.join)
        cls.addClassCleanup(cls.server.server_close)
        cls.addClassCleanup(cls.server.shutdown)
        cls.base_url = f"http://127.0.0.1:{cls.server.server_address[1]}"

    def test_doctests(self):
        assert_doctests(self, workloads)

    def test_registry(self):
        self.assertEqual(
            set(workloads.WORKLOADS),
            {"io_sleep", "io_http", "io_db", "cpu_python", "cpu_gil_free", "flaky", "fail", "noop"},
        )
        expected_kinds = {
            "io_sleep": "io",
            "io_http": "io",
            "io_db": "io",
            "cpu_python": "cpu_gil",
            "cpu_gil_free": "cpu_nogil",
            "flaky": "control",
            "fail": "control",
            "noop": "control",
        }
        for name, spec in workloads.WORKLOADS.items():
            with self.subTest(workload=name):
                self.assertEqual(spec.name, name)
                self.assertEqual(spec.kind, expected_kinds[name])
                self.assertIs(spec.function, getattr(workloads, name))
                # spawned processes receive workloads by reference
                self.assertIs(pickle.loads(pickle.dumps(spec.function)), spec.function)
                for param in spec.params:
                    self.assertLessEqual(param.minimum, param.default)
                    self.assertLessEqual(param.default, param.maximum)
        maxima = {
            (name, param.name): param.maximum for name, spec in workloads.WORKLOADS.items() for param in spec.params
        }
        self.assertEqual(maxima[("io_sleep", "ms")], 10000)
        self.assertEqual(maxima[("io_http", "ms")], 10000)
        self.assertEqual(maxima[("io_db", "ms")], 10000)
        self.assertEqual(maxima[("cpu_python", "n")], 50_000_000)
        self.assertEqual(maxima[("cpu_gil_free", "mb")], 4096)
        self.assertEqual(maxima[("flaky", "k")], 10)

    def test_validate_cleans(self):
        cases = [
            ("io_sleep", {"ms": "250"}, {"ms": 250}),
            ("io_sleep", {"ms": 10000.0}, {"ms": 10000}),
            ("io_sleep", {}, {"ms": 100}),
            ("io_sleep", None, {"ms": 100}),
            ("cpu_python", {"n": 1}, {"n": 1}),
            ("cpu_gil_free", {"mb": " 8 "}, {"mb": 8}),
            ("flaky", {"k": 0}, {"k": 0, "attempt": 0}),
            ("fail", {}, {}),
            ("io_http", {"url": "http://127.0.0.1/io"}, {"ms": 100, "url": "http://127.0.0.1/io"}),
            ("io_db", {"ms": 5, "dsn": {"dbname": "x"}}, {"ms": 5, "dsn": {"dbname": "x"}}),
        ]
        for name, params, expected in cases:
            with self.subTest(workload=name, params=params):
                self.assertEqual(workloads.validate(name, params), expected)

    def test_validate_refuses(self):
        cases = [
            ("io_sleep", {"ms": "abc"}, "ms must be an integer between 1 and 10000, got 'abc'"),
            ("io_sleep", {"ms": 0}, "ms must be an integer between 1 and 10000, got 0"),
            ("io_sleep", {"ms": 10001}, "ms must be an integer between 1 and 10000, got 10001"),
            ("io_sleep", {"ms": 1.5}, "ms must be an integer between 1 and 10000, got 1.5"),
            ("io_sleep", {"ms": True}, "ms must be an integer between 1 and 10000, got True"),
            ("io_sleep", {"ms": None}, "ms must be an integer between 1 and 10000, got None"),
            ("cpu_python", {"n": 50_000_001}, "n must be an integer between 1 and 50000000, got 50000001"),
            ("cpu_gil_free", {"mb": -1}, "mb must be an integer between 1 and 4096, got -1"),
            ("flaky", {"k": 11}, "k must be an integer between 0 and 10, got 11"),
            ("io_sleep", {"ms": 5, "n": 3}, "io_sleep has no parameter n; it takes: ms"),
            ("fail", {"ms": 5}, "fail has no parameter ms; it takes: nothing"),
            ("nope", {}, "unknown workload 'nope', expected one of io_sleep, io_http"),
            ("io_http", {"ms": 5}, "io_http needs url, an http(s) address, got None"),
            ("io_http", {"url": "ftp://x/io"}, "io_http needs url, an http(s) address, got 'ftp://x/io'"),
            ("io_db", {"dsn": ""}, "io_db needs dsn, a libpq connection string"),
        ]
        for name, params, message in cases:
            with self.subTest(workload=name, params=params):
                with self.assertRaises(WorkloadError) as caught:
                    workloads.validate(name, params)
                self.assertIn(message, str(caught.exception))
        self.assertTrue(issubclass(WorkloadError, ValueError))

    def test_flaky_fails_k_times_then_succeeds(self):
        for attempt in range(3):
            with self.assertRaises(TransientError):
                workloads.flaky(3, attempt)
        self.assertEqual(workloads.flaky(3, 3), "ok after 3 retries")
        self.assertEqual(workloads.flaky(0, 0), "ok after 0 retries")
        self.assertEqual(workloads.run_task("flaky", {"k": 1, "attempt": 1})["result"], "ok after 1 retries")

    def test_fail_always_fails(self):
        with self.assertRaisesRegex(WorkloadFailure, "always fails"):
            workloads.fail()
        with self.assertRaises(WorkloadFailure):
            workloads.run_task("fail", {})
        self.assertFalse(issubclass(WorkloadFailure, TransientError))

    def test_run_task_reports_where_and_when(self):
        before = time.time()
        task = workloads.run_task("io_sleep", {"ms": 30})
        self.assertEqual(task["pid"], os.getpid())
        self.assertEqual(task["thread"], threading.get_native_id())
        self.assertEqual(task["thread_name"], threading.current_thread().name)
        self.assertLessEqual(before, task["start"])
        self.assertGreaterEqual(task["end"] - task["start"], 0.029)
        self.assertLessEqual(task["end"], time.time())
        self.assertEqual(task["result"], 30)
        with self.assertRaises(WorkloadError):
            workloads.run_task("io_sleep", {"ms": 0})

    def test_run_task_async(self):
        """A native coroutine runs in the loop's thread, the rest in worker threads."""
        sleeper = asyncio.run(workloads.run_task_async("io_sleep", {"ms": 5}))
        self.assertEqual(sleeper["thread"], threading.get_native_id())
        self.assertEqual(sleeper["result"], 5)
        loop = asyncio.run(workloads.run_task_async("cpu_python", {"n": 10}))
        self.assertNotEqual(loop["thread"], threading.get_native_id())
        self.assertEqual(loop["result"], 19)

    def test_cpu_workloads(self):
        self.assertEqual(workloads.cpu_python(1000), sum(i * i % 7 for i in range(1000)))
        block = bytes(range(256)) * 4096
        self.assertEqual(workloads.cpu_gil_free(2), hashlib.sha256(block * 2).hexdigest())

    def test_io_http(self):
        started = time.perf_counter()
        self.assertEqual(workloads.io_http(100, url=self.base_url + "/io"), 200)
        self.assertGreaterEqual(time.perf_counter() - started, 0.1)
        with self.assertRaises(requests.HTTPError):
            workloads.io_http(1, url=self.base_url + "/missing")
        with self.assertRaises(requests.Timeout):
            workloads.io_http(1000, url=self.base_url + "/io", timeout=0.1)

    def test_io_db(self):
        if not get_db_name():
            self.skipTest("no database configured; Odoo's test runner always has one")
        _dbname, dsn = connection_info_for(get_db_name())
        started = time.perf_counter()
        self.assertEqual(workloads.io_db(100, dsn=dsn), 100)
        self.assertGreaterEqual(time.perf_counter() - started, 0.1)
        with self.assertRaises(psycopg2.OperationalError):
            workloads.io_db(1, dsn="host=127.0.0.1 port=1 connect_timeout=2")

    def test_calibrate_and_estimate(self):
        started = time.perf_counter()
        calibration = workloads.calibrate()
        self.assertLess(time.perf_counter() - started, 0.5)
        self.assertGreater(calibration[workloads.CPU_PYTHON_RATE], 1e5)
        self.assertGreater(calibration[workloads.GIL_FREE_RATE], 1)
        spec = workloads.WORKLOADS["cpu_python"]
        n = int(calibration[workloads.CPU_PYTHON_RATE] * 0.1)
        estimate = spec.estimate_seconds({"n": n}, calibration)
        started = time.perf_counter()
        workloads.cpu_python(n)
        elapsed = time.perf_counter() - started
        # the cost model is within a factor 3 of reality, on a noisy machine
        self.assertLess(estimate / 3, elapsed)
        self.assertLess(elapsed, estimate * 3)
        self.assertEqual(workloads.WORKLOADS["io_db"].estimate_seconds({"ms": 1500}, calibration), 1.5)
        gil_free = workloads.WORKLOADS["cpu_gil_free"]
        self.assertEqual(gil_free.estimate_seconds({"mb": 100}, {workloads.GIL_FREE_RATE: 200}), 0.5)
        self.assertEqual(workloads.WORKLOADS["fail"].estimate_seconds({}, calibration), 0.0)
