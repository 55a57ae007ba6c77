# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import doctest

from odoo.tests import BaseCase

from ..lib import times


class TestTimes(BaseCase):
    def test_doctests(self):
        result = doctest.testmod(times)
        self.assertGreater(result.attempted, 3)
        self.assertEqual(result.failed, 0)
