# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The wheel (``make wheel``, whool) installs as queue_job's does, and Odoo installs the addon from it.

A fresh venv sees the dev venv's packages (Odoo, queue_job and the
libraries) through a ``.pth`` file, but not this checkout: pip installs the
wheel offline (``--no-index``, so its requirements must be met by what is
there), and Odoo, whose addons_path no longer names the checkout, must find
async_lab in ``site-packages/odoo/addons`` and install it into a new
database.
"""

import ast
import configparser
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from odoo_server import BASE_COMMAND_OPTIONS, REPO, drop_database, module_states

sys.path.insert(0, str(REPO / "tools"))
import devenv

PREFIX = "odoo/addons/async_lab/"
#: What the top of the addon may hold in the wheel. A new file or folder at
#: the top of the checkout lands in the wheel unless tools/devenv.py
#: WHEEL_EXCLUDED names it: this list makes that a decision, taken here or there.
ADDON_TOP = {
    "__init__.py",
    "__manifest__.py",
    "README.rst",
    "hooks.py",
    "log_filters.py",
    "process_tracker.py",
    "odoo.conf.example",
    "controllers",
    "data",
    "demo",
    "docs",
    "i18n",
    "lib",
    "migrations",
    "models",
    "readme",
    "security",
    "static",
    "tests",
    "views",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return devenv.build_wheel(tmp_path_factory.mktemp("dist"))


def test_wheel_holds_the_addon_not_the_dev_tooling(wheel):
    assert wheel.name.startswith("odoo_addon_async_lab-17.0."), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    files = {name[len(PREFIX) :] for name in names if name.startswith(PREFIX)}
    assert not {name for name in names if not name.startswith(PREFIX) and ".dist-info/" not in name}
    for excluded in ("bench/", "tools/", "tests/integration/", "docker/", ".ci/", "docker-compose.yml", "Makefile"):
        assert not [name for name in files if name.startswith(excluded)], excluded
    assert not [name for name in files if name.startswith(".")], "dotfiles"
    assert "pyproject.toml" not in files
    assert {name.split("/")[0] for name in files} <= ADDON_TOP, "dev tooling in the wheel? see ADDON_TOP"
    manifest = ast.literal_eval((REPO / "__manifest__.py").read_text())
    needed = ["__init__.py", "__manifest__.py", "README.rst", "static/description/icon.png"]
    needed += manifest["data"] + manifest.get("demo", [])
    assert not [name for name in needed if name not in files], "missing from the wheel"
    # Every file of the addon's code is there: models, controllers, lib, static, the Odoo tests.
    for folder in ("models", "controllers", "lib", "static/src", "views", "security", "migrations"):
        tracked = {name for name in devenv.wheel_files() if name.startswith(folder + "/")}
        assert tracked and tracked <= files, folder
    assert {"tests/__init__.py", "docs/prometheus.yml", "docs/grafana/async_lab.json"} <= files
    assert "Name: odoo-addon-async_lab\n" in metadata
    assert "Requires-Dist: odoo-addon-queue_job>=17.0dev,<17.1dev\n" in metadata
    assert "Version: %s" % manifest["version"] in metadata


def test_odoo_installs_the_addon_from_the_wheel(wheel, base_conf, db_params, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([devenv.find_python(), "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dev venv's packages, and the .pth files there (Odoo's editable install).
    dev_site = sysconfig.get_paths()["purelib"]
    (Path(site) / "dev_venv.pth").write_text("import site; site.addsitedir(%r)\n" % dev_site)
    pip = [sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check"]
    proc = subprocess.run(pip + ["install", "--no-index", wheel], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = subprocess.run(pip + ["show", "-f", "odoo-addon-async_lab"], capture_output=True, text=True)
    assert "Location: %s" % site in installed.stdout, installed.stdout

    # A config whose addons_path has Odoo's addons only: not the checkout.
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(base_conf)
    src = devenv.resolve_source()
    addons_path = [d for d in devenv.addons_dirs(src) if not (d / "async_lab").exists()]
    assert src / "odoo" / "addons" in addons_path
    conf["options"]["addons_path"] = ",".join(str(d) for d in addons_path)
    conf["options"]["data_dir"] = str(tmp_path / "data")
    conf_path = tmp_path / "odoo.conf"
    with open(conf_path, "w") as fh:
        conf.write(fh)

    where = subprocess.run(
        [
            python,
            "-c",
            "import sys, odoo; odoo.tools.config.parse_config(['-c', sys.argv[1]]);"
            "from odoo.modules.module import get_module_path, initialize_sys_path;"
            "initialize_sys_path(); print(get_module_path('async_lab'))",
            conf_path,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert where.stdout.strip() == "%s/odoo/addons/async_lab" % site, where.stdout + where.stderr

    db = "async_lab_wheel_%d" % id(tmp_path)
    try:
        proc = subprocess.run(
            [python, src / "odoo-bin", "-c", conf_path, "-d", db, "-i", "async_lab", *BASE_COMMAND_OPTIONS],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert " ERROR " not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
        states = module_states(db_params, db)
        assert states["async_lab"] == "installed"
        assert states["queue_job"] == "installed"
    finally:
        drop_database(db_params, db)
