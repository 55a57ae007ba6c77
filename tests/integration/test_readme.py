# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""README.rst and the Apps page (index.html) are generated from readme/; the README documents the two commands."""

import subprocess
import sys

import docutils.core
import docutils.utils
from odoo_server import REPO


def test_readme_and_apps_page_are_generated_from_fragments():
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "gen_readme.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    index = (REPO / "static" / "description" / "index.html").read_text()
    # The Apps page is the README: its title, the fragments' text, absolute links.
    assert "<title>Async Lab</title>" in index
    assert "Install it on a dev or staging database" in index
    assert 'href="https://github.com/async-lab/async_lab/blob/main/docs/BENCHMARKS.rst"' in index


def test_check_notices_a_stale_apps_page(tmp_path):
    """--check compares index.html too: a fragment edited without regenerating fails it."""
    copy = tmp_path / "addon"
    for name in ("__manifest__.py", "requirements.txt", "README.rst", "readme", "tools", "static/description", "docs"):
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-r", str(REPO / name), str(target)], check=True)
    gen = [sys.executable, str(copy / "tools" / "gen_readme.py"), "--check"]
    assert subprocess.run(gen, capture_output=True).returncode == 0
    (copy / "static" / "description" / "index.html").write_text("<p>edited by hand</p>")
    proc = subprocess.run(gen, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "static/description/index.html is out of date" in proc.stderr
    assert "README.rst" not in proc.stderr


def test_benchmarks_live_in_docs_not_on_the_apps_page():
    assert not (REPO / "readme" / "BENCHMARKS.rst").exists()
    assert "`docs/BENCHMARKS.rst <docs/BENCHMARKS.rst>`_" in (REPO / "README.rst").read_text()
    assert "Request overhead" in (REPO / "docs" / "BENCHMARKS.rst").read_text()
    assert "Request overhead" not in (REPO / "static" / "description" / "index.html").read_text()


def test_readme_documents_the_two_commands_and_ci_calls_one():
    readme = (REPO / "README.rst").read_text()
    for needle in ("make run", "make test", "ODOO_SRC", "server_wide_modules", "[queue_job]", "addons_path"):
        assert needle in readme, needle
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_readme_renders_without_docutils_warnings():
    """A malformed table renders as an error box on the Odoo Apps page."""
    for path in [REPO / "README.rst", REPO / "docs" / "BENCHMARKS.rst", *sorted((REPO / "readme").glob("*.rst"))]:
        text = path.read_text()
        try:
            docutils.core.publish_doctree(text, settings_overrides={"report_level": 5, "halt_level": 2})
        except docutils.utils.SystemMessage as exc:
            raise AssertionError("%s: %s" % (path.name, exc)) from None
