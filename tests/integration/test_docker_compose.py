# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""docker-compose.yml is valid and says what readme/INSTALL.rst promises.

There is no Docker daemon here: ``docker compose config`` (or v1's
``docker-compose config``) parses, checks and resolves the file without
one. The test reads the resolved configuration it prints.
"""

import configparser
import json
import subprocess
import sys
from pathlib import Path

import pytest
from odoo_server import REPO

sys.path.insert(0, str(REPO / "tools"))
import devenv

COMPOSE_FILE = REPO / "docker-compose.yml"
#: Reads YAML on stdin, writes it as JSON: run by the validator's own Python
#: (v1 is a Python program that needs PyYAML; the dev venv has no YAML parser).
YAML_TO_JSON = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"


def compose_config(compose_file):
    """The configuration that the compose validator resolves from ``compose_file``, as a dict."""
    command = devenv.compose_command()
    if command is None:
        pytest.fail("no `docker compose` nor `docker-compose`: apt-get install docker-compose")
    if command == ["docker", "compose"]:
        args = ["docker", "compose", "-f", compose_file, "config", "--format", "json"]
    else:
        args = [*command, "-f", compose_file, "config"]
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=compose_file.parent, timeout=120)
    assert proc.returncode == 0, proc.stderr
    if command == ["docker", "compose"]:
        return json.loads(proc.stdout)
    shebang = Path(devenv.shutil.which("docker-compose")).read_text().splitlines()[0]
    python = shebang[2:].split()[0] if shebang.startswith("#!") else "python3"
    converted = subprocess.run([python, "-c", YAML_TO_JSON], input=proc.stdout, capture_output=True, text=True)
    assert converted.returncode == 0, converted.stderr
    return json.loads(converted.stdout)


def odoo_conf(config, service="odoo"):
    """The odoo.conf that ``service`` mounts as /etc/odoo/odoo.conf, parsed."""
    conf = configparser.ConfigParser(interpolation=None)
    assert conf.read(mounts(config["services"][service])["/etc/odoo/odoo.conf"])
    return conf


def mounts(service):
    """{target: source} of a service's bind mounts and volumes."""
    result = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        result[target] = source
    return result


def test_compose_file_is_valid_and_complete():
    config = compose_config(COMPOSE_FILE)
    services = config["services"]
    assert set(services) == {"db", "init", "odoo", "proxy"}
    assert services["db"]["image"] == "postgres:15"
    assert services["proxy"]["image"].startswith("nginx:")
    # Odoo: the official image plus queue_job (docker/Dockerfile), this checkout mounted.
    for name in ("init", "odoo"):
        service = services[name]
        assert Path(service["build"]["context"]) == REPO / "docker"
        assert mounts(service)["/mnt/extra-addons/async_lab"] == str(REPO)
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["odoo"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert "-i" in services["init"]["command"] and "async_lab" in services["init"]["command"]
    # Only the proxy is published.
    ports = services["proxy"]["ports"]
    assert [(str(p["published"]), p["target"]) if isinstance(p, dict) else p for p in ports] in (
        [("8080", 80)],
        ["8080:80"],
    ), ports
    assert "ports" not in services["odoo"]
    assert mounts(services["proxy"])["/etc/nginx/conf.d/default.conf"] == str(REPO / "docker" / "nginx.conf")
    assert set(config["volumes"]) == {"db-data", "odoo-data"}
    assert mounts(services["db"])["/var/lib/postgresql/data"] == "db-data"

    options = odoo_conf(config)["options"]
    assert options["workers"] == "3"
    assert options["server_wide_modules"] == "base,web,queue_job"
    assert options["gevent_port"] == "8072" and options["http_port"] == "8069"
    assert "/mnt/extra-addons" in options["addons_path"].split(",")
    assert odoo_conf(config)["queue_job"]["channels"].startswith("root:2,")


def test_dockerfile_is_the_official_image_with_queue_job():
    lines = (REPO / "docker" / "Dockerfile").read_text().splitlines()
    assert "FROM odoo:17" in lines
    assert any('"odoo-addon-queue_job==17.0.' in line for line in lines), "queue_job pinned"


def test_proxy_routes_the_websocket_to_gevent():
    """docker/nginx.conf is the dev proxy's routing (tools/devenv.py), pointed at the odoo service."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "devenv.py"), "docker-nginx", "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    conf = (REPO / "docker" / "nginx.conf").read_text()
    websocket = conf[conf.index("location /websocket") : conf.index("location / ")]
    assert "proxy_pass http://odoo:8072;" in websocket
    assert "proxy_pass http://odoo:8069;" in conf[conf.index("location / ") :]


def test_an_invalid_compose_file_is_refused(tmp_path):
    """The validator does validate: a service without an image or a build fails."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    image: postgres:15\n", "    imag: postgres:15\n"))
    with pytest.raises(AssertionError):
        compose_config(broken)
