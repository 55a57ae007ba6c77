# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo.exceptions import ValidationError
from odoo.tests import TransactionCase, tagged


@tagged("at_install", "-post_install")
class TestSecurity(TransactionCase):
    """The groups, the top menu and the access rights the addon ships."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.group_user = cls.env.ref("async_lab.async_lab_group_user")
        cls.group_manager = cls.env.ref("async_lab.async_lab_group_manager")

    def test_groups(self):
        self.assertEqual(self.group_user.category_id.name, "Async Lab")
        self.assertEqual(self.group_user.full_name, "Async Lab / User")
        self.assertEqual(self.group_manager.full_name, "Async Lab / Manager")
        self.assertIn(self.group_user, self.group_manager.implied_ids)
        admin = self.env.ref("base.user_admin")
        self.assertTrue(admin.has_group("async_lab.async_lab_group_manager"))
        self.assertTrue(admin.has_group("async_lab.async_lab_group_user"))

    def test_manager_implies_user_for_new_members(self):
        user = self.env["res.users"].create(
            {"name": "Lab manager", "login": "lab_manager_sec", "groups_id": [(6, 0, [self.group_manager.id])]}
        )
        self.assertTrue(user.has_group("async_lab.async_lab_group_user"))

    def test_lab_users_are_internal_users(self):
        """Async Lab is a backend application: its groups make internal users, who read what the
        web client and error messages need (a lab-only user once looped on an unreadable res.lang
        while translating an error)."""
        user = self.env["res.users"].create(
            {"name": "Lab only", "login": "lab_only_sec", "groups_id": [(6, 0, [self.group_manager.id])]}
        )
        self.assertTrue(user.has_group("base.group_user"))
        with self.assertRaisesRegex(ValidationError, "Unknown preset"):
            self.env["async_lab.experiment"].with_user(user).with_context(lang="en_US").run_preset("nope")
        portal = self.env["res.users"].create(
            {"name": "Portal", "login": "lab_portal_sec", "groups_id": [(6, 0, [self.env.ref("base.group_portal").id])]}
        )
        with self.assertRaisesRegex(ValidationError, "user type"):
            portal.write({"groups_id": [(4, self.group_user.id)]})

    def test_top_menu(self):
        menu = self.env.ref("async_lab.async_lab_menu_root")
        self.assertEqual(menu.name, "Async Lab")
        self.assertFalse(menu.parent_id)
        self.assertEqual(menu.groups_id, self.group_user)
        self.assertEqual(menu.web_icon, "async_lab,static/description/icon.png")

    def test_every_model_has_explicit_rights(self):
        """Each model the addon defines grants rights to both of its groups."""
        models = (
            self.env["ir.model"]
            .search([("model", "=like", "async_lab.%")])
            .filtered(lambda m: not m.transient and not self.env[m.model]._abstract)
        )
        self.assertGreaterEqual(len(models), 4)
        for model in models:
            access = self.env["ir.model.access"].search([("model_id", "=", model.id)])
            groups = access.mapped("group_id")
            with self.subTest(model=model.model):
                self.assertIn(self.group_user, groups, "no rights for Async Lab / User")
                self.assertIn(self.group_manager, groups, "no rights for Async Lab / Manager")
                self.assertFalse(access.filtered(lambda a: not a.group_id), "rights for everybody (no group)")
