# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest.mock import patch
from urllib.parse import parse_qs, urlsplit

from odoo.tests import BaseCase

from ..lib import strategies, tokens, workloads
from .common import assert_doctests


class _RecordingHandler(BaseHTTPRequestHandler):
    """Answers 200 to any GET and records its path and token header."""

    def do_GET(self):
        self.server.calls.append((self.path, self.headers.get(tokens.HEADER)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class TestSelfCallTokens(BaseCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingHandler)
        cls.server.calls = []
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.url = "http://127.0.0.1:%d/async_lab/io?db=db1" % cls.server.server_address[1]
        cls.key = tokens.derive_key("s3cret", "db1")

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.server.calls.clear()

    def test_doctests(self):
        assert_doctests(self, tokens)

    def assertSignedCall(self, path, token, ms):
        self.assertNotIn("key", path)
        self.assertNotIn("token", path)
        self.assertEqual(parse_qs(urlsplit(path).query), {"db": ["db1"], "ms": [str(ms)]})
        self.assertTrue(tokens.verify(self.key, "io", {"ms": ms}, token, now=time.time()), token)
        self.assertFalse(tokens.verify(self.key, "io", {"ms": ms + 1}, token, now=time.time()))
        expires = int(token.split(".")[0])
        self.assertLessEqual(expires, time.time() + ms / 1000 + workloads.HTTP_TIMEOUT_MARGIN + 1)

    def test_io_http_sends_the_token_in_a_header_never_the_key(self):
        self.assertEqual(workloads.io_http(3, self.url + "#key=" + self.key), 200)
        ((path, token),) = self.server.calls
        self.assertSignedCall(path, token, 3)

    def test_io_http_ignores_proxies_of_the_environment(self):
        with patch.dict(
            os.environ,
            {"HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""},
        ):
            self.assertEqual(workloads.io_http(1, self.url + "#key=" + self.key), 200)
        self.assertEqual(len(self.server.calls), 1)

    def test_a_spawned_child_signs_its_calls_too(self):
        """Child processes load workloads from its file, without the addon: tokens come along."""
        params = {"ms": 2, "url": self.url + "#key=" + self.key}
        result = strategies.run_strategy(strategies.PROCESSES, "io_http", params, 2, pool_size=1)
        self.assertEqual(result.errors, 0, result.first_error)
        self.assertEqual(len(self.server.calls), 2)
        for path, token in self.server.calls:
            self.assertSignedCall(path, token, 2)
