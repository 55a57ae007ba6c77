# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import doctest

from odoo.tests import BaseCase

from ..lib import channels


class TestChannels(BaseCase):
    """lib/channels.py: queue_job channel arithmetic."""

    def test_doctests(self):
        result = doctest.testmod(channels)
        self.assertGreaterEqual(result.attempted, 5)
        self.assertEqual(result.failed, 0)
