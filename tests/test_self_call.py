# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import socket
from unittest.mock import patch

from odoo.tests import tagged
from odoo.tools import config, mute_logger

from .common import AsyncLabCase


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@tagged("at_install", "-post_install")
class TestStoredJobErrors(AsyncLabCase):
    """A failed io_http job stores no URL query string, key or token (issue 11, item 6)."""

    def test_failed_io_http_job_keeps_no_query_string(self):
        # queue_job mails its managers about a failed job: no mail server here.
        with patch.dict(config.options, {"http_port": closed_port()}), mute_logger("odoo.addons.mail.models.mail_mail"):
            burst = self.Burst.create({"workload": "io_http", "ms": 5, "job_count": 1, "max_retries": 1})
            (uuid,) = burst.with_user(self.manager)._launch()
            job = self.perform_like_runner(uuid)
        self.assertEqual(job.state, "failed")
        self.assertIn("/async_lab/io", job.exc_info)  # the error still says where it failed
        for text in (job.exc_info, job.exc_message):
            self.assertNotIn("ms=5", text)
            self.assertNotIn("db=%s" % self.env.cr.dbname, text)
            self.assertNotIn("key=", text)
        # What the API shows every Async Lab user.
        self.assertNotIn("db=", job.with_user(self.user).read(["exc_message"])[0]["exc_message"])

    def test_business_jobs_errors_are_left_alone(self):
        job = self.env["res.partner"].with_delay().exists().db_record()
        text = "failed on http://example.com/x?token=abc"
        job.write({"exc_info": text})
        self.assertEqual(job.exc_info, text)
