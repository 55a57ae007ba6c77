# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""README.rst is generated from readme/ and documents the two commands."""

import subprocess
import sys

import docutils.core
import docutils.utils
from odoo_server import REPO


def test_readme_is_generated_from_fragments():
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "gen_readme.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_readme_documents_the_two_commands_and_ci_calls_one():
    readme = (REPO / "README.rst").read_text()
    for needle in ("make run", "make test", "ODOO_SRC", "server_wide_modules", "[queue_job]", "addons_path"):
        assert needle in readme, needle
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_readme_renders_without_docutils_warnings():
    """A malformed table renders as an error box on the Odoo Apps page."""
    for path in [REPO / "README.rst", *sorted((REPO / "readme").glob("*.rst"))]:
        text = path.read_text()
        try:
            docutils.core.publish_doctree(text, settings_overrides={"report_level": 5, "halt_level": 2})
        except docutils.utils.SystemMessage as exc:
            raise AssertionError("%s: %s" % (path.name, exc)) from None
