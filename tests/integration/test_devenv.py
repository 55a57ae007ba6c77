# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The bootstrap's source resolution stops with one clear message."""

import doctest
import os
import subprocess
import sys

from odoo_server import REPO

DEVENV = REPO / "tools" / "devenv.py"


def run_devenv(tmp_path, *args, **env):
    full_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        # A closed loopback port: "no network", without sending anything out.
        "ODOO_SRC_URL": "http://127.0.0.1:9/odoo.tar.gz",
        "ODOO_GIT_URL": "http://127.0.0.1:9/odoo.git",
        **env,
    }
    return subprocess.run(
        [sys.executable, str(DEVENV), *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def fake_source(path, version):
    (path / "odoo").mkdir(parents=True)
    (path / "odoo" / "release.py").write_text("version_info = (%s, 0, 0, 'final', 0, '')\n" % version)
    return path


def test_wrong_series_is_refused(tmp_path):
    src = fake_source(tmp_path / "odoo16", 16)
    proc = run_devenv(tmp_path, "source", ODOO_SRC=str(src))
    assert proc.returncode == 2
    assert "is Odoo 16.0, but async_lab needs Odoo 17.0" in proc.stderr
    assert "Set ODOO_SRC" in proc.stderr
    assert not (tmp_path / "home" / ".cache" / "async_lab" / "odoo_src").exists()


def test_not_a_source_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_devenv(tmp_path, "source", ODOO_SRC=str(tmp_path / "empty"))
    assert proc.returncode == 2
    assert "is not an Odoo source folder" in proc.stderr


def test_no_source_and_no_network(tmp_path):
    proc = run_devenv(tmp_path, "source")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "No Odoo 17.0 source" in proc.stderr
    assert "Set ODOO_SRC" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_given_source_is_remembered(tmp_path):
    src = fake_source(tmp_path / "odoo17", 17)
    first = run_devenv(tmp_path, "source", ODOO_SRC=str(src))
    assert first.returncode == 0, first.stderr
    # A later run without the variable (a fresh clone in CI) finds it again.
    again = run_devenv(tmp_path, "source")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str(src)


def test_doctests():
    sys.path.insert(0, str(DEVENV.parent))
    import devenv

    result = doctest.testmod(devenv)
    assert result.attempted and not result.failed
