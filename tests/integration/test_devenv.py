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


def load_devenv():
    sys.path.insert(0, str(DEVENV.parent))
    import devenv

    return devenv


class FakeSystem:
    """The Debian packages installed, and the commands run, by a stubbed apt-get."""

    def __init__(self, devenv, monkeypatch, *, root, installable):
        self.installed, self.commands, self.installable = set(), [], installable
        monkeypatch.setattr(devenv.os, "geteuid", lambda: 0 if root else 1000)
        monkeypatch.setattr(
            devenv.shutil, "which", lambda name, **kw: "/usr/bin/apt-get" if name == "apt-get" else None
        )
        monkeypatch.setattr(devenv, "run", self.run)
        monkeypatch.setattr(devenv, "log", lambda *a: None)
        monkeypatch.delenv("ASYNC_LAB_NO_APT", raising=False)

    def run(self, cmd, **kw):
        self.commands.append(cmd)
        if cmd[:2] == ["apt-get", "install"]:
            self.installed |= {p for p in cmd[2:] if not p.startswith("-") and p in self.installable}
        return subprocess.CompletedProcess(cmd, 0)

    def tool(self, package):
        return (package.title(), lambda: package in self.installed, package)


def test_missing_tools_are_installed_as_root(monkeypatch):
    devenv = load_devenv()
    system = FakeSystem(devenv, monkeypatch, root=True, installable={"prometheus", "nginx"})
    system.installed.add("chromium")
    devenv.ensure_system_tools([system.tool(p) for p in ("chromium", "prometheus", "nginx")])
    install = [c for c in system.commands if c[:2] == ["apt-get", "install"]]
    assert install == [["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx", "prometheus"]]
    assert system.installed == {"chromium", "prometheus", "nginx"}


def test_missing_tools_without_root_say_what_to_install(monkeypatch):
    devenv = load_devenv()
    system = FakeSystem(devenv, monkeypatch, root=False, installable={"prometheus"})
    try:
        devenv.ensure_system_tools([system.tool("prometheus")])
    except devenv.SetupError as exc:
        message = str(exc)
    else:
        raise AssertionError("a missing tool must stop `make test`")
    assert system.commands == []
    assert "needs Prometheus" in message and "apt-get install prometheus" in message


def test_a_failed_install_stops_with_the_tools_still_missing(monkeypatch):
    devenv = load_devenv()
    system = FakeSystem(devenv, monkeypatch, root=True, installable={"nginx"})
    try:
        devenv.ensure_system_tools([system.tool("nginx"), system.tool("prometheus")])
    except devenv.SetupError as exc:
        message = str(exc)
    else:
        raise AssertionError("a package apt-get could not install must stop `make test`")
    assert "needs Prometheus, and" in message  # nginx got installed
    assert "apt-get install prometheus;" in message
