# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.tests import BaseCase

from ..lib import channels
from .common import assert_doctests


class TestChannels(BaseCase):
    """lib/channels.py: queue_job channel arithmetic."""

    def test_doctests(self):
        assert_doctests(self, channels, more_than=4)
