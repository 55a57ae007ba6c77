# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.tests import BaseCase

from ..lib import catalogue, workloads
from .common import assert_doctests


class TestCatalogue(BaseCase):
    """The workloads and channels the lab offers, without a database."""

    def test_doctests(self):
        assert_doctests(self, catalogue, more_than=5)

    def test_every_kind_has_a_channel_of_the_lab(self):
        channels = dict(catalogue.CHANNELS)
        for kind in workloads.KINDS:
            self.assertIn(catalogue.DEFAULT_CHANNEL_BY_KIND[kind], channels, kind)
        for name in workloads.WORKLOADS:
            self.assertIn(catalogue.lab_channel(name), channels, name)

    def test_param_fields_are_the_parameters_users_set(self):
        taken = {p.name for spec in workloads.WORKLOADS.values() for p in spec.params} - catalogue.RUNTIME_PARAMS
        self.assertEqual(taken, set(catalogue.PARAM_FIELDS))
