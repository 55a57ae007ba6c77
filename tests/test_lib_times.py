# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.tests import BaseCase

from ..lib import times
from .common import assert_doctests


class TestTimes(BaseCase):
    def test_doctests(self):
        assert_doctests(self, times, more_than=3)
