# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.tests import BaseCase

from ..lib import i18n
from .common import assert_doctests


class TestLibI18n(BaseCase):
    def test_doctests(self):
        assert_doctests(self, i18n, more_than=1)
