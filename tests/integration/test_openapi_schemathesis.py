# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""schemathesis against a live prefork server: every response conforms to /async_lab/openapi.json.

schemathesis's dependencies clash with Odoo's pins, so it lives in its own
venv, ``.dev/schemathesis``, which ``tools/devenv.py tool schemathesis``
creates on first use (pinned version). It runs twice: as an Async Lab /
User on every operation (the load routes answer 403), and as a Manager on
the read-only ones (the load routes would only spend minutes sleeping).
"""

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from odoo_server import REPO, ensure_user

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def schemathesis():
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "devenv.py"), "tool", "schemathesis"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode:
        pytest.fail("could not install schemathesis in .dev/schemathesis:\n%s%s" % (proc.stdout, proc.stderr))
    return proc.stdout.strip().splitlines()[-1]


def described_operations(spec):
    """``"METHOD /path"`` of every GET and POST operation that an OpenAPI description lists."""
    return {
        "%s %s" % (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post")
    }


def run_schemathesis(exe, server, session, tmp_path, label, *filters):
    schema = tmp_path / ("openapi-%s.json" % label)
    resp = session.get(server.url + "/async_lab/openapi.json", timeout=30)
    assert resp.status_code == 200, resp.text
    schema.write_text(json.dumps(resp.json()))
    junit = tmp_path / ("schemathesis-%s.xml" % label)
    proc = subprocess.run(
        [
            exe,
            "run",
            str(schema),
            "--url",
            server.url,
            "--header",
            "Cookie: session_id=%s" % session.cookies["session_id"],
            "--checks",
            CHECKS,
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--seed",
            "11",
            "--no-color",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--suppress-health-check",
            "all",
            "--report",
            "junit",
            "--report-junit-path",
            str(junit),
            *filters,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env=dict(os.environ, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1"),
    )
    assert proc.returncode == 0, "schemathesis (%s) found failures:\n%s\n%s" % (
        label,
        proc.stdout[-6000:],
        proc.stderr[-2000:],
    )
    operations = {case.get("name") for case in ET.parse(junit).getroot().iter("testcase")}
    return proc.stdout, {name for name in operations if name.split(" ")[0] in ("GET", "POST")}


def test_every_response_conforms_to_the_openapi_description(make_server, tmp_path):
    exe = schemathesis()
    server = make_server(workers=2, max_cron_threads=0, channels="root:1")
    admin = server.session()
    user = ensure_user(server, admin, "schemathesis_user", "base.group_user", "async_lab.async_lab_group_user")
    described = described_operations(user.get(server.url + "/async_lab/openapi.json", timeout=30).json())
    _out, operations = run_schemathesis(exe, server, user, tmp_path, "user")
    assert operations == described  # every operation of the description, the load routes included
    _out, operations = run_schemathesis(
        exe,
        server,
        admin,
        tmp_path,
        "manager",
        "--include-method",
        "GET",
        "--exclude-path-regex",
        "/async_lab/(io|cpu)$",
    )
    assert operations == {
        name for name in described if name.startswith("GET ") and not re.search(r"/async_lab/(io|cpu)$", name)
    }
    assert "GET /async_lab/stats" in operations
    assert "Traceback" not in server.log(), server.log()[-3000:]
