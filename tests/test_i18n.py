# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Translations: the template follows the code, French translates all of it, and shows.

* ``i18n/async_lab.pot`` holds every translatable string of the module, as
  Odoo exports it (``make pot``), and nothing else;
* ``i18n/fr.po`` translates every one of them, with the same placeholders;
* a French user sees French, from the server (menus, field labels, errors)
  and from the web client (the dashboard's OWL templates and ``_t()``).
"""

import os
import re
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import patch

import polib

from odoo.exceptions import ValidationError
from odoo.tests import HttpCase, TransactionCase, new_test_user, tagged
from odoo.tools import translate

from ..lib.i18n import addon_walk

MODULE = "async_lab"
I18N = Path(__file__).resolve().parent.parent / "i18n"
POT = I18N / ("%s.pot" % MODULE)
FIX = "Run `make pot` (it exports i18n/async_lab.pot and merges i18n/*.po), then translate the new entries."
#: Python's %(name)s (with a format: %(seconds).0f) and QWeb's {{expression}} in t-attf-* attributes.
PLACEHOLDER = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[sdrf]|\{\{[^}]*\}\}")
DASHBOARD_URL = "/web#action=async_lab.async_lab_dashboard_action"
MANAGER = "base.group_user,async_lab.async_lab_group_manager"


@contextmanager
def addon_files_only():
    """Odoo's scan of the addon folder, as ``make pot`` does it (lib/i18n.py)."""
    with patch.object(translate.os, "walk", addon_walk(os.walk)):
        yield


def exported_terms(env):
    """The msgids Odoo exports for the module now: code (Python, JS, OWL) and records."""
    with addon_files_only():
        reader = translate.TranslationModuleReader(env.cr, modules=[MODULE])
    return {source for (module, _type, _name, _res_id, source, _value, _comments) in reader if module == MODULE}


def msgids(path):
    return {entry.msgid for entry in polib.pofile(str(path)) if entry.msgid and not entry.obsolete}


def bullet(terms):
    return "".join("\n  - %r" % term for term in sorted(terms))


@tagged("post_install", "-at_install")
class TestPotIsUpToDate(TransactionCase):
    def test_pot_holds_every_translatable_string_and_no_other(self):
        exported = exported_terms(self.env)
        self.assertGreater(len(exported), 300, "the export found too few terms: is the scan looking at the addon?")
        in_pot = msgids(POT)
        missing, stale = exported - in_pot, in_pot - exported
        self.assertFalse(
            missing or stale,
            "i18n/async_lab.pot is out of date.\nMissing:%s\nNo longer in the code:%s\n%s"
            % (bullet(missing), bullet(stale), FIX),
        )

    def test_pot_is_the_same_on_every_machine(self):
        text = POT.read_text()
        self.assertNotIn("POT-Creation-Date", text)
        self.assertNotIn("PO-Revision-Date", text)
        self.assertIn('"Project-Id-Version: Odoo Server 17.0\\n"', text)
        occurrences = [line for line in text.splitlines() if line.startswith("#: code:")]
        self.assertTrue(occurrences)
        for line in occurrences:
            self.assertRegex(line, r"^#: code:addons/%s/[\w/.-]+:0$" % MODULE)


@tagged("post_install", "-at_install")
class TestFrenchIsComplete(TransactionCase):
    def test_every_string_is_translated_with_the_same_placeholders(self):
        pot = msgids(POT)
        po = polib.pofile(str(I18N / "fr.po"))
        entries = {entry.msgid: entry for entry in po if not entry.obsolete}
        self.assertFalse(
            pot - set(entries), "fr.po lacks these strings of the template:%s\n%s" % (bullet(pot - set(entries)), FIX)
        )
        self.assertFalse(set(entries) - pot, "fr.po translates strings the template no longer has: %s" % FIX)
        untranslated = {msgid for msgid, entry in entries.items() if not entry.msgstr.strip() or entry.fuzzy}
        self.assertFalse(untranslated, "fr.po leaves these untranslated (or fuzzy):%s" % bullet(untranslated))
        for msgid, entry in entries.items():
            with self.subTest(msgid=msgid):
                # A placeholder lost or renamed breaks the French message at run time.
                self.assertEqual(sorted(PLACEHOLDER.findall(entry.msgstr)), sorted(PLACEHOLDER.findall(msgid)))
        self.assertEqual(po.metadata.get("Language"), "fr")


def load_french(env):
    env["res.lang"]._activate_lang("fr_FR")
    env["ir.module.module"]._load_module_terms([MODULE], ["fr_FR"], overwrite=True)


@tagged("post_install", "-at_install")
class TestFrenchServerSide(TransactionCase):
    """What the server renders: menus and field labels (records) and messages of _() (code)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        load_french(cls.env)
        cls.user = new_test_user(cls.env, "lab_fr_server", groups=MANAGER, lang="fr_FR")

    def test_menu_and_field_label(self):
        fr = self.env(context={"lang": "fr_FR"})
        self.assertEqual(fr.ref("async_lab.async_lab_dashboard_menu").name, "Tableau de bord")
        self.assertEqual(fr.ref("async_lab.async_lab_burst_menu").name, "Rafales")
        self.assertEqual(fr["async_lab.burst"].fields_get(["workload"])["workload"]["string"], "Charge de travail")
        # English stays English.
        menu = self.env.ref("async_lab.async_lab_dashboard_menu")
        self.assertEqual(menu.with_context(lang="en_US").name, "Dashboard")

    def test_dashboard_labels(self):
        """The process roles, exit reasons, channels and presets the dashboard shows come from the server."""
        data = self.env["async_lab.dashboard"].with_user(self.user).with_context(lang="fr_FR").get_data()
        self.assertEqual(data["labels"]["roles"]["master"], "Maître")
        self.assertEqual(data["labels"]["exit_reasons"]["server_stop"], "Serveur arrêté")
        channels = {c["name"]: c["label"] for c in data["burst_form"]["channels"]}
        self.assertEqual(channels["root.async_lab.io"], "E/S (root.async_lab.io)")
        presets = self.env["async_lab.experiment"].with_user(self.user).with_context(lang="fr_FR").get_presets()
        self.assertIn("E/S : 16 × sleep de 200 ms", [p["name"] for p in presets])

    def test_error_message(self):
        experiments = self.env["async_lab.experiment"].with_user(self.user).with_context(lang="fr_FR")
        with self.assertRaisesRegex(ValidationError, "Préréglage inconnu 'nope'"):
            experiments.run_preset("nope")


@tagged("post_install", "-at_install")
class TestFrenchDashboardTour(HttpCase):
    """The web client of a French user: the dashboard's OWL templates and _t() strings in French."""

    def test_dashboard_in_french(self):
        load_french(self.env)
        new_test_user(self.env, "lab_fr_client", groups=MANAGER, lang="fr_FR")
        self.env["async_lab.worker"]._cron_refresh()
        self.start_tour(DASHBOARD_URL, "async_lab_dashboard_fr_tour", login="lab_fr_client", timeout=180)
