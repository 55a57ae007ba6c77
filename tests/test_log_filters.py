# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging
import sys

from odoo.modules.module import get_manifest
from odoo.tests import BaseCase

from .. import log_filters, post_load


def record(exc, level=logging.ERROR):
    try:
        raise exc
    except Exception:
        exc_info = sys.exc_info()
    return logging.LogRecord("odoo.http", level, __file__, 1, "Exception during request handling.", (), exc_info)


class TestLogFilters(BaseCase):
    """The refused websocket of a dev server: one WARNING line, no traceback."""

    def test_installed_on_odoo_http_by_post_load(self):
        self.assertEqual(get_manifest("async_lab")["post_load"], "post_load")
        post_load()  # what loading the module does (once per process: idempotent)
        post_load()
        filters = logging.getLogger("odoo.http").filters
        self.assertEqual(sum(isinstance(f, log_filters.WebsocketBindFilter) for f in filters), 1)

    def test_websocket_bind_error_becomes_one_line(self):
        bind = RuntimeError("Couldn't bind the websocket. Is the connection opened on the evented port (8072)?")
        flt = log_filters.WebsocketBindFilter()
        first = record(bind)
        self.assertTrue(flt.filter(first))
        self.assertEqual((first.levelno, first.levelname, first.exc_info), (logging.WARNING, "WARNING", None))
        message = first.getMessage()
        self.assertIn("evented port (8072)", message)
        self.assertIn("gevent_port", message)
        self.assertNotIn("\n", message)
        self.assertFalse(flt.filter(record(bind)), "the repeats are dropped")
        # Anything else passes as it was.
        other = record(RuntimeError("something else"))
        self.assertTrue(flt.filter(other))
        self.assertEqual((other.levelno, other.getMessage()), (logging.ERROR, "Exception during request handling."))
        self.assertIsNotNone(other.exc_info)
