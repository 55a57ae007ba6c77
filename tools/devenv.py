#!/usr/bin/env python3
# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""One-command dev instance and test runner for async_lab.

``make run`` and ``make test`` call this script with the system Python; it
needs only the standard library until it has built ``.venv``.

Steps (each idempotent):

1. ``.venv`` with the pinned requirements (``requirements.txt``);
2. the Odoo 17.0 source: ``$ODOO_SRC``, else the source remembered in
   ``~/.cache/async_lab/``, else the official 17.0 source downloaded there;
3. ``.dev/addons/async_lab``, a link to this repository, whatever the
   clone's folder is called;
4. PostgreSQL: a reachable server, else a cluster of our own under ``.dev/``;
5. ``.dev/odoo.conf``, derived from ``odoo.conf.example``.

Variables: ODOO_SRC, DB (database, default async_lab), HTTP_PORT (8069),
GEVENT_PORT (8072), PROXY_PORT (8080, the nginx in front of both), WORKERS
(3), PGHOST/PGPORT/PGUSER/PGPASSWORD (use that server), PG_PORT (port of the
cluster we start, 5488).
"""

# A command-line tool (make run / make test): it reports to its user on stdout.
# pylint: disable=print-used

import argparse
import configparser
import contextlib
import email.parser
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / ".dev"
VENV = REPO / ".venv"
VENV_PY = VENV / "bin" / "python"
ODOO_BIN = VENV / "bin" / "odoo"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "async_lab"
REMEMBERED_SRC = CACHE / "odoo_src"
DOWNLOADED_SRC = CACHE / "odoo-17.0"
ODOO_TARBALL_URL = os.environ.get("ODOO_SRC_URL", "https://nightly.odoo.com/17.0/nightly/src/odoo_17.0.latest.tar.gz")
ODOO_GIT_URL = os.environ.get("ODOO_GIT_URL", "https://github.com/odoo/odoo.git")
MODULE = "async_lab"
PG_ROLE = "async_lab"
ADMIN_LOGIN = ADMIN_PASSWORD = "admin"

SOURCE_HELP = (
    "Set ODOO_SRC to an Odoo 17.0 source folder (the one holding odoo-bin and "
    "odoo/release.py), e.g. `ODOO_SRC=/path/to/odoo-17.0 make run`. It is "
    "remembered in %s for later runs." % REMEMBERED_SRC
)


class SetupError(Exception):
    """A problem the user must fix; printed as one clear message."""


def log(msg, *args):
    print("[async_lab] " + (msg % args if args else msg), flush=True)


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run([str(c) for c in cmd], **kw)


# --------------------------------------------------------------------------
# Odoo source
# --------------------------------------------------------------------------
def odoo_series(src):
    """Return the "17.0"-style series of an Odoo source folder, or None."""
    release = Path(src) / "odoo" / "release.py"
    if not release.is_file():
        return None
    match = re.search(r"^version_info\s*=\s*\(\s*(\d+)\s*,\s*(\d+)", release.read_text(), re.M)
    return match and "%s.%s" % match.groups()


def check_source(src, origin):
    src = Path(src).expanduser().resolve()
    series = odoo_series(src)
    if series is None:
        raise SetupError(
            "%s (%s) is not an Odoo source folder: no odoo/release.py in it. %s" % (origin, src, SOURCE_HELP)
        )
    if series != "17.0":
        raise SetupError("%s (%s) is Odoo %s, but async_lab needs Odoo 17.0. %s" % (origin, src, series, SOURCE_HELP))
    return src


def download_source():
    """Fetch the official 17.0 source into the cache (tarball, then git)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    errors = []
    partial = Path(tempfile.mkdtemp(prefix="odoo-17.0.", dir=CACHE))
    try:
        log("downloading the Odoo 17.0 nightly source from %s", ODOO_TARBALL_URL)
        archive = partial / "odoo.tar.gz"
        with urllib.request.urlopen(ODOO_TARBALL_URL, timeout=30) as resp, open(archive, "wb") as out:
            shutil.copyfileobj(resp, out)
        with tarfile.open(archive) as tar:
            # Extracted as is: the official source archive (or ODOO_SRC_URL's).
            tar.extractall(partial / "x")
        (top,) = (partial / "x").iterdir()
        top.rename(DOWNLOADED_SRC)
        return DOWNLOADED_SRC
    # Any failure of the download has the same cure: the git clone below.
    except Exception as exc:
        errors.append("%s: %s" % (ODOO_TARBALL_URL, exc))
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    if shutil.which("git"):
        log("trying a shallow git clone of %s (branch 17.0)", ODOO_GIT_URL)
        target = CACHE / "odoo-17.0.git-partial"
        shutil.rmtree(target, ignore_errors=True)
        proc = run(
            ["git", "clone", "--quiet", "--depth", "1", "--branch", "17.0", ODOO_GIT_URL, target],
            check=False,
            capture_output=True,
            text=True,
            env=dict(os.environ, GIT_TERMINAL_PROMPT="0"),
        )
        if proc.returncode == 0:
            target.rename(DOWNLOADED_SRC)
            return DOWNLOADED_SRC
        shutil.rmtree(target, ignore_errors=True)
        errors.append("%s: %s" % (ODOO_GIT_URL, proc.stderr.strip()[-300:]))
    raise SetupError(
        "No Odoo 17.0 source: ODOO_SRC is not set, none is cached in %s, and "
        "the download failed (no network?):\n  %s\n%s" % (CACHE, "\n  ".join(errors), SOURCE_HELP)
    )


def resolve_source():
    """$ODOO_SRC, else the remembered source, else a cached or fresh download."""
    given = os.environ.get("ODOO_SRC")
    if given:
        src = check_source(given, "ODOO_SRC")
        CACHE.mkdir(parents=True, exist_ok=True)
        if not REMEMBERED_SRC.exists() or REMEMBERED_SRC.read_text().strip() != str(src):
            REMEMBERED_SRC.write_text("%s\n" % src)
            log("remembered ODOO_SRC=%s in %s", src, REMEMBERED_SRC)
        return src
    if REMEMBERED_SRC.is_file():
        remembered = REMEMBERED_SRC.read_text().strip()
        if Path(remembered).is_dir():
            return check_source(remembered, "the source remembered in %s" % REMEMBERED_SRC)
        log("the remembered source %s is gone; forgetting it", remembered)
        REMEMBERED_SRC.unlink()
    if DOWNLOADED_SRC.is_dir():
        return check_source(DOWNLOADED_SRC, "the cached download")
    return check_source(download_source(), "the downloaded source")


# --------------------------------------------------------------------------
# Virtualenv
# --------------------------------------------------------------------------
def find_python():
    for name in ("python3.11", "python3"):
        exe = shutil.which(name)
        if exe:
            out = run(
                [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
            ).stdout.strip()
            if out == "3.11":
                return exe
    raise SetupError(
        "async_lab's dev instance needs Python 3.11 (python3.11 on PATH); the requirements are pinned for it."
    )


def ensure_venv(src):
    requirements = REPO / "requirements.txt"
    stamp = VENV / ".async_lab-stamp"
    wanted = hashlib.sha256(requirements.read_bytes() + str(src).encode()).hexdigest()
    if stamp.is_file() and stamp.read_text() == wanted and ODOO_BIN.exists():
        return
    if not VENV_PY.exists():
        log("creating %s", VENV)
        run([find_python(), "-m", "venv", VENV])
    pip = [VENV_PY, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    log("installing Python dependencies (first run: a few minutes)")
    run(pip + ["install", "setuptools<70", "wheel"])
    # Odoo first and without its dependency list: requirements.txt pins them,
    # and queue_job's wheel needs an installed "odoo" distribution. Compat
    # editable mode keeps the odoo/addons folder of the queue_job wheel from
    # shadowing the odoo package.
    run(pip + ["install", "--no-deps", "--editable", src, "--config-settings", "editable_mode=compat"])
    run(pip + ["install", "--requirement", requirements])
    stamp.write_text(wanted)


#: Tools whose dependencies clash with Odoo's pins (requests, urllib3,
#: Werkzeug...): each gets its own venv under .dev/, made on first use.
TOOL_PINS = {"schemathesis": "schemathesis==4.32.5", "whool": "whool==1.3.1"}


def ensure_tool(name):
    """The path of tool ``name``'s executable, from ``.dev/<name>`` (created on demand)."""
    venv = DEV / name
    exe = venv / "bin" / name
    stamp = venv / ".async_lab-pin"
    if exe.exists() and stamp.is_file() and stamp.read_text() == TOOL_PINS[name]:
        return exe
    log("installing %s in %s (first use)", TOOL_PINS[name], venv)
    run([find_python(), "-m", "venv", "--clear", venv])
    run([venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check", "--quiet", "install", TOOL_PINS[name]])
    stamp.write_text(TOOL_PINS[name])
    return exe


def venv_python(code, *args, **kw):
    """Run a snippet with the venv's interpreter; return its stdout."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return run([VENV_PY, "-c", code, *args], **kw).stdout


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------
_PG_PROBE = """
import json, sys, psycopg2
params = json.loads(sys.argv[1])
try:
    conn = psycopg2.connect(dbname="postgres", connect_timeout=3, **params)
except Exception as exc:
    print(json.dumps({"error": str(exc).strip()}))
else:
    with conn.cursor() as cr:
        cr.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
        print(json.dumps({"createdb": cr.fetchone()[0], "user": conn.info.user}))
"""


def pg_probe(params):
    return json.loads(venv_python(_PG_PROBE, json.dumps(params)))


def pg_bindir():
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise SetupError(
        "No reachable PostgreSQL and no PostgreSQL server binaries to start one. "
        "Install PostgreSQL (Debian: apt-get install postgresql) or point "
        "PGHOST/PGPORT/PGUSER/PGPASSWORD at a server where the user may create databases."
    )


class OwnCluster:
    """A PostgreSQL cluster owned by this checkout (run as a non-root user)."""

    def __init__(self):
        self.bindir = pg_bindir()
        self.os_user = None
        if os.geteuid() == 0:
            import pwd

            for name in ("postgres", "nobody"):
                try:
                    self.os_user = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            if self.os_user is None:
                raise SetupError("running as root, but no 'postgres' or 'nobody' user to run PostgreSQL as")
        self.root = self._pick_root()
        self.data = self.root / "data"
        self.sockets = self.root / "run"
        self.logfile = self.root / "postgres.log"
        self.port = self._pick_port()

    def _pick_port(self):
        """PG_PORT, else the port this cluster had, else the first free one from 5488."""
        if os.environ.get("PG_PORT"):
            return int(os.environ["PG_PORT"])
        remembered = self.root / "port"
        if remembered.exists():
            return int(remembered.read_text())
        import socket

        for port in range(5488, 5588):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) != 0:
                    self.root.mkdir(parents=True, exist_ok=True)
                    remembered.write_text(str(port))
                    return port
        raise SetupError("no free port for PostgreSQL in 5488-5587: set PG_PORT")

    def _pick_root(self):
        default = DEV / "postgres"
        if self.os_user is None or self._reachable_by_user(DEV):
            return default
        # The checkout lives under a folder the server's user cannot enter
        # (e.g. /root): keep the cluster where it can.
        digest = hashlib.sha1(str(REPO).encode()).hexdigest()[:10]
        return Path("/var/tmp") / ("async_lab-%s" % digest) / "postgres"

    def _reachable_by_user(self, path):
        path = path.resolve() if path.exists() else path.parent.resolve()
        for part in [path, *path.parents]:
            st = part.stat()
            if st.st_uid == self.os_user.pw_uid:
                continue
            if not st.st_mode & 0o001:  # others may not traverse
                return False
        return True

    def _as_user(self, cmd, **kw):
        if self.os_user is not None:
            kw.update(user=self.os_user.pw_uid, group=self.os_user.pw_gid, extra_groups=[])
        return run(cmd, cwd="/", **kw)

    @property
    def params(self):
        return {"host": "127.0.0.1", "port": self.port, "user": PG_ROLE}

    def running(self):
        proc = self._as_user([self.bindir / "pg_ctl", "status", "-D", self.data], check=False, capture_output=True)
        return proc.returncode == 0

    def start(self):
        """Start the cluster if needed; return True if this call started it."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.os_user is not None:
            for path in (self.root,):
                os.chown(path, self.os_user.pw_uid, self.os_user.pw_gid)
        if not (self.data / "PG_VERSION").exists():
            log("initialising a PostgreSQL cluster in %s", self.data)
            self._as_user(
                [
                    self.bindir / "initdb",
                    "-D",
                    self.data,
                    "-U",
                    PG_ROLE,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                capture_output=True,
            )
        self.sockets.mkdir(exist_ok=True)
        if self.os_user is not None:
            os.chown(self.sockets, self.os_user.pw_uid, self.os_user.pw_gid)
        if self.running():
            return False
        log("starting PostgreSQL on 127.0.0.1:%s (log: %s)", self.port, self.logfile)
        options = "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" % (self.port, self.sockets)
        proc = self._as_user(
            [self.bindir / "pg_ctl", "start", "-w", "-t", "60", "-D", self.data, "-l", self.logfile, "-o", options],
            check=False,
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            tail = self.logfile.read_text()[-1500:] if self.logfile.exists() else ""
            raise SetupError(
                "PostgreSQL did not start on port %s (set PG_PORT to another port?):\n%s%s"
                % (self.port, proc.stdout + proc.stderr, tail)
            )
        return True

    def stop(self):
        log("stopping PostgreSQL (%s)", self.data)
        self._as_user([self.bindir / "pg_ctl", "stop", "-D", self.data, "-m", "fast"], check=False, capture_output=True)


def ensure_postgres():
    """Return (connection params, cluster we started or None)."""
    explicit = {
        key: os.environ[var]
        for key, var in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"), ("password", "PGPASSWORD"))
        if os.environ.get(var)
    }
    if explicit:
        probe = pg_probe(explicit)
        if "error" in probe:
            raise SetupError("PostgreSQL at PG* variables is unreachable: %s" % probe["error"])
        if probe["user"] == "postgres" or not probe["createdb"]:
            raise SetupError(
                "PGUSER=%s cannot be used: Odoo refuses the 'postgres' role and needs "
                "a role that may create databases." % probe["user"]
            )
        return explicit, None
    cluster = OwnCluster()
    if (cluster.data / "PG_VERSION").exists():
        started = cluster.start()
        return cluster.params, cluster if started else None
    # No cluster of ours yet: is there a local server we may use as ourselves?
    import getpass

    if os.geteuid() != 0 and getpass.getuser() != "postgres":
        probe = pg_probe({})
        if "error" not in probe and probe["createdb"]:
            log("using the local PostgreSQL server as role %s", probe["user"])
            return {}, None
    started = cluster.start()
    return cluster.params, cluster if started else None


# --------------------------------------------------------------------------
# Odoo config and database
# --------------------------------------------------------------------------
def addons_dirs(src):
    dirs = [src / "odoo" / "addons"]
    if (src / "addons").is_dir():
        dirs.append(src / "addons")
    dirs.append(DEV / "addons")
    return dirs


def ensure_addon_link():
    link = DEV / "addons" / MODULE
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() == REPO:
        return
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(REPO, target_is_directory=True)


def http_port():
    return int(os.environ.get("HTTP_PORT", "8069"))


def write_config(path, src, pg, *, db, port, gevent_port, workers, logfile=None):
    """Derive a dev config from odoo.conf.example."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(REPO / "odoo.conf.example")
    opts = conf["options"]
    opts.update(
        addons_path=",".join(str(d) for d in addons_dirs(src)),
        data_dir=str(DEV / "data"),
        db_host=str(pg.get("host", "False")),
        db_port=str(pg.get("port", "False")),
        db_user=str(pg.get("user", "False")),
        db_password=str(pg.get("password", "False")),
        db_name=db,
        dbfilter="^%s$" % re.escape(db),
        http_port=str(port),
        gevent_port=str(gevent_port),
        workers=str(workers),
        max_cron_threads="1",
        proxy_mode="False",
        logfile=str(logfile or ""),
        admin_passwd=ADMIN_PASSWORD,
    )
    if not logfile:
        opts.pop("logfile")
    queue_job = conf["queue_job"]
    # Dev capacity: leave at least one HTTP worker free for the UI.
    queue_job.update(
        channels=os.environ.get(
            "CHANNELS",
            "root:2,root.async_lab:2,root.async_lab.io:2,root.async_lab.cpu:1,root.async_lab.serial:1:sequential",
        ),
        host="127.0.0.1",
        port=str(port),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fh.write("; Generated by tools/devenv.py from odoo.conf.example: edit that file.\n")
        conf.write(fh)
    return path


_DB_STATE = """
import json, sys, psycopg2
params, db = json.loads(sys.argv[1]), sys.argv[2]
conn = psycopg2.connect(dbname="postgres", **params)
with conn.cursor() as cr:
    cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db])
    exists = bool(cr.fetchone())
state = None
if exists:
    with psycopg2.connect(dbname=db, **params) as c2, c2.cursor() as cr:
        cr.execute("SELECT to_regclass('ir_module_module') IS NOT NULL")
        if cr.fetchone()[0]:
            cr.execute("SELECT state FROM ir_module_module WHERE name = %s", [sys.argv[3]])
            row = cr.fetchone()
            state = row and row[0]
print(json.dumps({"exists": exists, "state": state}))
"""

_DROP_DBS = """
import json, sys, psycopg2
params = json.loads(sys.argv[1])
conn = psycopg2.connect(dbname="postgres", **params)
conn.autocommit = True
with conn.cursor() as cr:
    for db in sys.argv[2:]:
        cr.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [db])
        cr.execute('DROP DATABASE IF EXISTS "%s"' % db.replace('"', ''))
"""


def db_state(pg, db):
    return json.loads(venv_python(_DB_STATE, json.dumps(pg), db, MODULE))


def drop_databases(pg, dbs):
    venv_python(_DROP_DBS, json.dumps(pg), *dbs)


def ensure_database(conf, pg, db):
    state = db_state(pg, db)
    base = [
        ODOO_BIN,
        "-c",
        conf,
        "-d",
        db,
        "--stop-after-init",
        "--workers=0",
        "--max-cron-threads=0",
        "--without-demo=all",
        "--log-level=warn",
    ]
    if state["exists"] and state["state"] == "installed":
        log("updating %s in database %s", MODULE, db)
        run(base + ["-u", MODULE])
    else:
        if state["exists"] and state["state"] is None:
            raise SetupError("Database %s exists but is not an Odoo database; set DB to another name." % db)
        log("creating database %s with %s installed (first run: about a minute)", db, MODULE)
        run(base + ["-i", MODULE])


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------
def bootstrap():
    src = resolve_source()
    ensure_venv(src)
    ensure_addon_link()
    pg, started = ensure_postgres()
    return src, pg, started


# --------------------------------------------------------------------------
# Reverse proxy (nginx): /websocket to the gevent port, the rest to HTTP
# --------------------------------------------------------------------------
NGINX_HELP = "Debian: apt-get install nginx; `.ci/run` installs it as root"

#: The routing of the proxy, shared by ``make run`` (:func:`proxy_config`) and
#: docker-compose.yml (docker/nginx.conf, :func:`docker_proxy_config`).
NGINX_SERVER = """\
map $http_upgrade $connection_upgrade {{
    default upgrade;
    "" close;
}}
server {{
    listen {listen};
    client_max_body_size 64m;
    proxy_read_timeout 720s;
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Real-IP $remote_addr;
    # The bus: in prefork only the gevent process serves websockets.
    location /websocket {{
        proxy_pass http://{gevent};
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }}
    location / {{
        proxy_pass http://{http};
        proxy_redirect off;
    }}
}}
"""

NGINX_DEV_CONF = """\
# Generated by tools/devenv.py (proxy_config): the dev reverse proxy of async_lab.
{user}daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{
    worker_connections 256;
}}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
{server}}}
"""
DOCKER_NGINX = REPO / "docker" / "nginx.conf"


def proxy_server(*, listen, http, gevent):
    """The ``map`` and ``server`` blocks of the proxy (nginx's ``http`` context)."""
    return NGINX_SERVER.format(listen=listen, http=http, gevent=gevent)


def docker_proxy_config():
    """The text of docker/nginx.conf: the dev proxy's routing, to the compose services."""
    return (
        "# Generated by `python3 tools/devenv.py docker-nginx` (the routing of make run's proxy): do not edit.\n"
        + proxy_server(listen=80, http="odoo:8069", gevent="odoo:8072")
    )


def proxy_config(root, *, listen, http, gevent):
    """Write ``root/nginx.conf``: nginx on 127.0.0.1:``listen`` in front of Odoo.

    Everything nginx writes (pid, logs, temporary files) stays under
    ``root``; run as root, its worker keeps our user instead of nginx's
    default ``nobody``, which could not write there.
    """
    root = Path(root).resolve()
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / "tmp" / name).mkdir(parents=True, exist_ok=True)
    user = ""
    if os.geteuid() == 0:
        import grp
        import pwd

        user = "user %s %s;\n" % (pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name)
    server = proxy_server(listen="127.0.0.1:%d" % listen, http="127.0.0.1:%d" % http, gevent="127.0.0.1:%d" % gevent)
    path = root / "nginx.conf"
    path.write_text(NGINX_DEV_CONF.format(user=user, root=root, server=server))
    return path


def find_nginx():
    """nginx's executable (it lives in /usr/sbin, often off a user's PATH), or None."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


def start_proxy(root, *, listen, http, gevent, timeout=15):
    """Start nginx from :func:`proxy_config` in ``root``; return its process once it listens."""
    nginx = find_nginx()
    if not nginx:
        raise SetupError("The reverse proxy needs nginx (%s)" % NGINX_HELP)
    conf = proxy_config(root, listen=listen, http=http, gevent=gevent)
    root = conf.parent
    # -e: the error log before the config is read (the default is under /var/log).
    cmd = [nginx, "-p", root, "-e", root / "error.log", "-c", conf]
    check = run(cmd + ["-t", "-q"], check=False, capture_output=True, text=True)
    if check.returncode:
        raise SetupError("nginx refuses %s:\n%s" % (conf, (check.stdout + check.stderr).strip()))
    proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL, start_new_session=True)
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log_tail = (root / "error.log").read_text()[-1500:] if (root / "error.log").exists() else ""
            raise SetupError(
                "nginx exited with code %s (port %s in use? set PROXY_PORT):\n%s" % (proc.returncode, listen, log_tail)
            )
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", listen)) == 0:
                return proc
        time.sleep(0.1)
    stop_proxy(proc)
    raise SetupError("nginx did not listen on 127.0.0.1:%s within %ss" % (listen, timeout))


def stop_proxy(proc):
    """Stop nginx (SIGQUIT: graceful, its workers finish their requests), then make sure."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def print_process_tree(master_pid, roles):
    code = (
        "import json, sys, psutil\n"
        "m = psutil.Process(int(sys.argv[1]))\n"
        "print(json.dumps([(c.pid, c.cmdline()) for c in m.children()]))\n"
    )
    children = json.loads(venv_python(code, str(master_pid)))
    log("master PID %s", master_pid)
    for pid, cmdline in children:
        role = roles.get(pid) or ("gevent" if "gevent" in cmdline else "?")
        log("  +- %-22s PID %s", role, pid)


def cmd_run(args):
    src, pg, started = bootstrap()
    db = os.environ.get("DB", MODULE)
    port = http_port()
    gevent_port = int(os.environ.get("GEVENT_PORT", "8072"))
    proxy_port = int(os.environ.get("PROXY_PORT", "8080"))
    conf = write_config(
        DEV / "odoo.conf",
        src,
        pg,
        db=db,
        port=port,
        gevent_port=gevent_port,
        workers=int(os.environ.get("WORKERS", "3")),
    )
    ensure_database(conf, pg, db)
    if not find_nginx():
        log("no nginx (%s): the dashboard will poll instead of going live", NGINX_HELP)
    log("starting Odoo (prefork) with %s", conf)
    proc = subprocess.Popen(
        [str(ODOO_BIN), "-c", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    roles = {}
    ready = threading.Event()
    worker_re = re.compile(r"Worker (\w+) \((\d+)\) alive")

    def pump():
        for line in proc.stdout:
            sys.stdout.write(line)
            match = worker_re.search(line)
            if match:
                roles[int(match.group(2))] = {
                    "WorkerHTTP": "HTTP worker",
                    "WorkerCron": "cron worker",
                    "WorkerJobRunner": "queue_job runner",
                }.get(match.group(1), match.group(1))
            if "queue job runner ready" in line:
                ready.set()
        sys.stdout.flush()

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    # Ctrl-C (and a plain `kill`) stop everything we started, even when the
    # shell that launched us made SIGINT ignored (background jobs).
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    threading.Thread(target=pump, daemon=True).start()
    proxy = None
    try:
        wait_health(port, proc, timeout=120)
        if find_nginx():
            proxy = start_proxy(DEV / "nginx", listen=proxy_port, http=port, gevent=gevent_port)
        ready.wait(timeout=20)
        time.sleep(1)
        if proc.poll() is not None:  # another server answered the health check on our port
            raise SetupError("Odoo exited with code %s (HTTP_PORT %s in use?)" % (proc.returncode, port))
        print_process_tree(proc.pid, roles)
        if proxy:
            log("nginx (PID %s) routes /websocket to %s and the rest to %s", proxy.pid, gevent_port, port)
        log(
            "Odoo is up: http://127.0.0.1:%s/web  (login %s / password %s, database %s)%s",
            proxy_port if proxy else port,
            ADMIN_LOGIN,
            ADMIN_PASSWORD,
            db,
            "" if proxy else ", without a proxy: the dashboard polls",
        )
        log("Ctrl-C stops Odoo%s%s.", ", nginx" if proxy else "", " and PostgreSQL" if started else "")
        proc.wait()
    except KeyboardInterrupt:
        log("stopping Odoo (PID %s)", proc.pid)
    finally:
        if proxy:
            stop_proxy(proxy)
        stop_tree(proc)
        if started:
            started.stop()
    return proc.returncode or 0


def wait_health(port, proc, timeout):
    deadline = time.monotonic() + timeout
    url = "http://127.0.0.1:%d/web/health" % port
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SetupError("Odoo exited with code %s before it served %s" % (proc.returncode, url))
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.5)
    raise SetupError("Odoo did not answer %s within %ss" % (url, timeout))


def stop_tree(proc):
    """SIGTERM the master, wait, then make sure none of its children survive."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # the whole session: workers, job runner and the gevent process
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def chromium_found():
    return any(shutil.which(n) for n in ("chromium", "google-chrome", "chromium-browser", "google-chrome-stable"))


def prometheus_found():
    return bool(shutil.which("prometheus") and shutil.which("promtool"))


#: What ``make test`` needs from the system: (what, how to find it, Debian package).
TEST_TOOLS = [
    ("Chromium", chromium_found, "chromium"),
    ("Prometheus and promtool", prometheus_found, "prometheus"),
    ("nginx", lambda: bool(find_nginx()), "nginx"),
    ("docker compose or docker-compose", lambda: bool(compose_command()), "docker-compose"),
]


def may_install_packages():
    """True when missing system packages can be installed here: root, with apt-get.

    ``ASYNC_LAB_NO_APT=1`` turns it off (the tool then only says what is missing).
    """
    no_apt = os.environ.get("ASYNC_LAB_NO_APT", "").strip().lower() not in ("", "0", "false", "no")
    return os.geteuid() == 0 and bool(shutil.which("apt-get")) and not no_apt


def ensure_system_tools(tools):
    """Install with apt-get the Debian packages of the ``tools`` that are missing, when root.

    ``tools`` holds ``(what, found, package)`` rows (see :data:`TEST_TOOLS`).
    A user who is not root, or a failed install, gets one message naming
    every missing tool and the command that installs it.
    """
    missing = [(what, package) for what, found, package in tools if not found()]
    if missing and may_install_packages():
        packages = sorted({package for _what, package in missing})
        log("installing %s with apt-get (the tests need them)", " ".join(packages))
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-qq"], check=False, env=env)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=False, env=env)
        missing = [(what, package) for what, found, package in tools if not found()]
    if missing:
        raise SetupError(
            "`make test` needs %s, and would otherwise skip or fail the tests that use them "
            "(Debian: apt-get install %s; run as root, `make test` installs them itself)"
            % (", ".join(what for what, _package in missing), " ".join(sorted({p for _w, p in missing})))
        )


def check_browser_deps():
    """Chromium and websocket-client: without them Odoo silently *skips* the browser tests."""
    ensure_system_tools(TEST_TOOLS[:1])
    if venv_python("import importlib.util as u; print(bool(u.find_spec('websocket')))").strip() != "True":
        raise SetupError(
            "Browser tests would be skipped, so `make test` refuses to run without "
            "websocket-client (pip install websocket-client in .venv)"
        )


def compose_command():
    """The command that validates docker-compose.yml: ``docker compose`` (v2) or ``docker-compose`` (v1), or None.

    ``config`` parses and resolves the file without a Docker daemon.
    """
    if shutil.which("docker"):
        proc = run(["docker", "compose", "version"], check=False, capture_output=True)
        if proc.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def check_integration_tools():
    """The integration tests need real tools, never skipped without them:
    Prometheus (a scrape, and promtool on docs/prometheus.yml), nginx (the
    dev proxy) and a compose validator (docker-compose.yml)."""
    ensure_system_tools(TEST_TOOLS[1:])


ODOO_TEST_LINE = re.compile(r" (?P<level>INFO|WARNING|ERROR|CRITICAL) \S+ (?P<logger>[\w.]+): (?P<msg>.*)")


def summarize_odoo_log(lines, module=MODULE):
    """Count passed/failed/skipped tests of ``module`` in an Odoo test log.

    A test is counted once however many of its subtests fail.

    >>> prefix = "2026-01-01 00:00:00,000 1 %s db odoo.addons.async_lab.tests.test_x: "
    >>> summarize_odoo_log([
    ...   prefix % "INFO" + "Starting TestX.test_a ...",
    ...   prefix % "INFO" + "Starting TestX.test_b ...",
    ...   prefix % "INFO" + "Starting TestX.test_c ...",
    ...   prefix % "ERROR" + "FAIL: Subtest TestX.test_a (model='x')",
    ...   prefix % "ERROR" + "FAIL: Subtest TestX.test_a (model='y')",
    ...   prefix % "INFO" + "skipped TestX.test_b : no Chrome",
    ... ])
    {'run': 3, 'failed': 1, 'skipped': 1, 'skip_reasons': ['TestX.test_b : no Chrome'], 'passed': 1}
    """
    started = set()
    failed = set()
    reasons = []
    prefix = "odoo.addons.%s." % module
    for line in lines:
        match = ODOO_TEST_LINE.search(line)
        if not match or not match["logger"].startswith(prefix):
            continue
        msg = match["msg"].strip()
        if msg.startswith("Starting ") and msg.endswith(" ..."):
            started.add(msg[len("Starting ") : -4])
        elif match["level"] == "ERROR" and re.match(r"(FAIL|ERROR): ", msg):
            test = re.sub(r"^(FAIL|ERROR): (Subtest )?", "", msg).split(" ")[0]
            failed.add(test)
        elif msg.startswith("skipped "):
            reasons.append(msg[len("skipped ") :])
    run_count = len(started | failed)  # a setUpClass error starts no test
    return {
        "run": run_count,
        "failed": len(failed),
        "skipped": len(reasons),
        "skip_reasons": reasons,
        "passed": max(run_count - len(failed) - len(reasons), 0),
    }


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cmd_test(args):
    src, pg, started = bootstrap()
    check_browser_deps()
    if not os.environ.get("SKIP_INTEGRATION"):
        check_integration_tools()
    db = "async_lab_test_%d" % os.getpid()
    dbs = [db]
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    rc = 0
    try:
        test_conf = DEV / ("odoo-test-%d.conf" % os.getpid())
        conf = write_config(test_conf, src, pg, db=db, port=free_port(), gevent_port=free_port(), workers=0)
        # 1. The addon's Odoo tests (at_install and post_install, with tours).
        log("Odoo tests: installing %s in the throwaway database %s", MODULE, db)
        tags = os.environ.get("TEST_TAGS", "/%s" % MODULE)
        logpath = DEV / "odoo-test.log" if not os.environ.get("TEST_TAGS") else DEV / ("odoo-test-%d.log" % os.getpid())
        with open(logpath, "w") as out:
            proc = subprocess.Popen(
                [
                    str(ODOO_BIN),
                    "-c",
                    str(conf),
                    "-d",
                    db,
                    "-i",
                    MODULE,
                    "--test-enable",
                    "--test-tags",
                    tags,
                    "--stop-after-init",
                    "--workers=0",
                    "--max-cron-threads=0",
                    "--without-demo=all",
                    "--log-level=test",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            lines = []
            for line in proc.stdout:
                out.write(line)
                lines.append(line)
                if re.search(r" (ERROR|CRITICAL|WARNING) | odoo\.tests\.stats| (FAIL|ERROR): ", line):
                    sys.stdout.write(line)
            proc.wait()
        summary = summarize_odoo_log(lines)
        browser_skips = [r for r in summary["skip_reasons"] if re.search(r"chrome|browser|websocket", r, re.I)]
        log("Odoo tests: %(passed)d passed, %(failed)d failed, %(skipped)d skipped" % summary)
        if browser_skips:
            log("browser tests were skipped, which counts as failure: %s", browser_skips)
            summary["failed"] += len(browser_skips)
            summary["skipped"] -= len(browser_skips)
        if proc.returncode and not summary["failed"]:
            log("odoo exited with code %s (see %s)", proc.returncode, logpath)
            summary["failed"] += 1
        if summary["run"] == 0:
            log("no Odoo test ran (see %s)", logpath)
            summary["failed"] += 1
        add(totals, summary)

        # 2. The same Odoo tests under pytest-odoo, against the installed
        #    database, as many users run them.
        if not os.environ.get("SKIP_PYTEST_ODOO") and not os.environ.get("TEST_TAGS"):
            log("Odoo tests under pytest-odoo (database %s)", db)
            add(
                totals,
                run_pytest(
                    "pytest-odoo",
                    [
                        "--odoo-config",
                        test_conf,
                        "--odoo-database",
                        db,
                        "--odoo-http",
                        "%s/tests" % MODULE,
                        "--ignore",
                        "%s/tests/integration" % MODULE,
                        # Not the addon's folder, whose pyproject.toml (the wheel's) pytest
                        # would take as its configuration: it would import the addon as a
                        # package named after the checkout's folder, not odoo.addons.async_lab.
                        # The rootdir makes the test ids those of --deselect below.
                        "--rootdir",
                        DEV / "addons",
                        "--confcutdir",
                        "%s/tests" % MODULE,
                        # The tour ran above, in Odoo's runner (never skipped); a second
                        # browser run here would only double the suite's slowest test.
                        "--deselect",
                        "%s/tests/test_dashboard.py::TestDashboardTour" % MODULE,
                    ],
                    cwd=DEV / "addons",  # so that pytest-odoo imports it as odoo.addons.async_lab
                ),
            )

        # 3. The multi-worker integration tests, with their own server processes.
        if not os.environ.get("SKIP_INTEGRATION"):
            log("integration tests (tests/integration, pytest)")
            # --rootdir keeps pytest from importing tests/__init__.py (Odoo's
            # test package) as a parent package of these plain pytest files.
            integration = REPO / "tests" / "integration"
            add(
                totals,
                run_pytest(
                    "integration",
                    ["-p", "no:odoo", "--rootdir", integration, integration],
                    cwd=REPO,
                    env=dict(os.environ, ASYNC_LAB_TEST_DB=db, ASYNC_LAB_ODOO_CONF=str(test_conf)),
                ),
            )
    finally:
        drop_databases(pg, dbs)
        for path in DEV.glob("*-%d.*" % os.getpid()):
            if path.suffix != ".log":
                path.unlink()
        if started:
            started.stop()
    rc = 1 if totals["failed"] else 0
    print("%(passed)d passed, %(failed)d failed, %(skipped)d skipped" % totals)
    return rc


def add(totals, counts):
    for key in totals:
        totals[key] += counts[key]


def run_pytest(label, args, cwd, env=None):
    """Run pytest; return its counts from a JUnit report (a crash counts as a failure)."""
    junit = DEV / ("%s-junit-%d.xml" % (label, os.getpid()))
    proc = run(
        [VENV_PY, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "--junitxml", junit, *args],
        check=False,
        env=env,
        cwd=cwd,
    )
    counts = junit_counts(junit) if junit.exists() else None
    if counts is None:
        return {"passed": 0, "failed": 1, "skipped": 0}
    if proc.returncode not in (0, 1):
        counts["failed"] += 1
    log("%s: %d passed, %d failed, %d skipped", label, counts["passed"], counts["failed"], counts["skipped"])
    return counts


def junit_counts(path):
    """passed/failed/skipped test cases of a JUnit report (subtests not counted apart)."""
    import xml.etree.ElementTree as ET

    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for case in ET.parse(path).getroot().iter("testcase"):
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            counts["failed"] += 1
        elif "skipped" in tags:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts


def cmd_bootstrap(args):
    src, pg, started = bootstrap()
    conf = write_config(
        DEV / "odoo.conf",
        src,
        pg,
        db=os.environ.get("DB", MODULE),
        port=http_port(),
        gevent_port=int(os.environ.get("GEVENT_PORT", "8072")),
        workers=int(os.environ.get("WORKERS", "3")),
    )
    if args.database:
        ensure_database(conf, pg, os.environ.get("DB", MODULE))
    log("ready: %s (Odoo %s)", conf, src)
    return 0


_POT_EXPORT = r"""
import io, os, re, sys
import odoo
from odoo.tools import config, translate

conf, db, module, out = sys.argv[1:]
config.parse_config(["-c", conf, "-d", db, "--log-level=warn"])
registry = odoo.modules.registry.Registry.new(db)
# Only the addon's own files: not .venv, nor .dev (which links back here).
from odoo.addons.async_lab.lib.i18n import addon_walk

translate.os.walk = addon_walk(os.walk)
buf = io.BytesIO()
with registry.cursor() as cr:
    translate.trans_export(None, [module], buf, "po", cr)
text = buf.getvalue().decode()
# Same bytes on every machine and every day: no dates, the series only.
text = re.sub(r'^"(POT-Creation-Date|PO-Revision-Date): .*"$\n', "", text, flags=re.M)
text = re.sub(r'^("Project-Id-Version: Odoo Server) .*"$', r'\1 %s\\n"' % odoo.release.serie, text, flags=re.M)
with open(out, "w") as fh:
    fh.write(text)

# Each language follows the template, as msgmerge would: new strings come
# with an empty msgstr (a test lists them), removed ones are dropped.
import polib  # Odoo's own dependency

pot = polib.pofile(out, wrapwidth=78)
order = {entry.msgid: index for index, entry in enumerate(pot)}
for path in sorted(os.listdir(os.path.dirname(out))):
    if path.endswith(".po"):
        po = polib.pofile(os.path.join(os.path.dirname(out), path), wrapwidth=78)
        po.merge(pot)
        for entry in po.obsolete_entries():
            po.remove(entry)
        po[:] = sorted(po, key=lambda entry: order[entry.msgid])  # the template's order, not appended
        po.save()
        print("merged %s: %d untranslated" % (path, len(po.untranslated_entries())))
"""


def cmd_pot(args):
    """Export i18n/<module>.pot with Odoo, from the dev database updated first."""
    src, pg, started = bootstrap()
    db = os.environ.get("DB", MODULE)
    try:
        conf = write_config(
            DEV / "odoo.conf",
            src,
            pg,
            db=db,
            port=http_port(),
            gevent_port=int(os.environ.get("GEVENT_PORT", "8072")),
            workers=int(os.environ.get("WORKERS", "3")),
        )
        ensure_database(conf, pg, db)
        pot = REPO / "i18n" / ("%s.pot" % MODULE)
        pot.parent.mkdir(exist_ok=True)
        venv_python(_POT_EXPORT, conf, db, MODULE, pot, capture_output=False)
        count = sum(1 for line in pot.read_text().splitlines() if line.startswith("msgid ")) - 1
        log("wrote %s: %d terms", pot.relative_to(REPO), count)
    finally:
        if started:
            started.stop()
    return 0


def cmd_tool(args):
    print(ensure_tool(args.name))
    return 0


# --------------------------------------------------------------------------
# Wheel (whool)
# --------------------------------------------------------------------------
#: What the wheel leaves out: the dev tooling, not the addon. Files at the top
#: whose name starts with a dot (.ci, .ruff.toml...) are left out as well.
#: docs/grafana and docs/prometheus.yml stay: they configure Prometheus and
#: Grafana for the /metrics exporter of this very version, and README.rst
#: points at them.
WHEEL_EXCLUDED = (
    "bench/",
    "tools/",
    "tests/integration/",
    "docker/",
    "docker-compose.yml",
    "docs/dashboard.png",
    "Makefile",
    "requirements.txt",
)


def wheel_files():
    """The files of the checkout that go into the wheel: those under git, less WHEEL_EXCLUDED."""
    tracked = run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True).stdout.split("\0")
    return [
        name
        for name in tracked
        if name and not name.startswith(".") and not name.startswith(WHEEL_EXCLUDED) and (REPO / name).is_file()
    ]


#: whool's own metadata functions (whool is pinned: TOOL_PINS), given the
#: addon's folder: its public hook would take the current directory, whose
#: real path is named after the checkout, not after the addon.
_WHOOL_METADATA = """
import sys
from pathlib import Path
from whool.buildapi import _get_metadata, _write_metadata
_write_metadata(Path(sys.argv[2]), _get_metadata(Path(sys.argv[1])))
"""


def build_wheel(outdir):
    """Build odoo-addon-async_lab's wheel with whool into ``outdir``; return its path.

    whool packs every file under git; the wheel leaves the dev tooling out.
    So whool first computes the metadata here (the version from the
    manifest and the git history), then builds from a copy that has only
    :func:`wheel_files` and that metadata as PKG-INFO, as from an sdist.
    """
    whool = ensure_tool("whool")
    python = whool.parent / "python"
    outdir = Path(outdir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="async_lab-wheel-") as tmp:
        # whool's metadata (name from the folder, version from the manifest and
        # git), from the checkout's link named after the addon, whatever the
        # clone's folder is called.
        ensure_addon_link()
        run([python, "-c", _WHOOL_METADATA, DEV / "addons" / MODULE, Path(tmp) / "PKG-INFO"])
        stage = Path(tmp) / MODULE  # whool names the addon after its folder
        for name in wheel_files() + ["pyproject.toml"]:
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, stage / name)
        shutil.copy2(Path(tmp) / "PKG-INFO", stage / "PKG-INFO")
        with open(stage / "PKG-INFO", encoding="utf-8") as fh:
            metadata = email.parser.HeaderParser().parse(fh)
        run(
            [
                python,
                "-m",
                "pip",
                "--disable-pip-version-check",
                "--quiet",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "--wheel-dir",
                outdir,
                stage,
            ],
            cwd=tmp,
        )
    # The wheel's name, as whool makes it (PEP 427).
    return outdir / ("%s-%s-py3-none-any.whl" % (re.sub(r"[-_.]+", "_", metadata["Name"]).lower(), metadata["Version"]))


def cmd_wheel(args):
    wheel = build_wheel(args.outdir)
    log("built %s", wheel)
    print(wheel)
    return 0


def cmd_docker_nginx(args):
    if args.check:
        if not DOCKER_NGINX.is_file() or DOCKER_NGINX.read_text() != docker_proxy_config():
            print("%s is out of date: run python3 tools/devenv.py docker-nginx" % DOCKER_NGINX, file=sys.stderr)
            return 1
        return 0
    DOCKER_NGINX.write_text(docker_proxy_config())
    log("wrote %s", DOCKER_NGINX)
    return 0


def cmd_source(args):
    print(resolve_source())
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="dev instance, multi-worker").set_defaults(func=cmd_run)
    sub.add_parser("test", help="the whole test suite").set_defaults(func=cmd_test)
    boot = sub.add_parser("bootstrap", help="venv, source, PostgreSQL, .dev/odoo.conf")
    boot.add_argument("--database", action="store_true", help="also create/update the database")
    boot.set_defaults(func=cmd_bootstrap)
    sub.add_parser("pot", help="export i18n/async_lab.pot from the dev database").set_defaults(func=cmd_pot)
    sub.add_parser("source", help="print the Odoo source in use").set_defaults(func=cmd_source)
    wheel = sub.add_parser("wheel", help="build the odoo-addon-async_lab wheel (whool), without the dev tooling")
    wheel.add_argument("--outdir", default=REPO / "dist", type=Path, help="where to put it (default: dist/)")
    wheel.set_defaults(func=cmd_wheel)
    docker_nginx = sub.add_parser("docker-nginx", help="write docker/nginx.conf from the dev proxy's routing")
    docker_nginx.add_argument("--check", action="store_true", help="exit 1 if it is out of date")
    docker_nginx.set_defaults(func=cmd_docker_nginx)
    tool = sub.add_parser("tool", help="install a dev tool in its own venv under .dev/; print its path")
    tool.add_argument("name", choices=sorted(TOOL_PINS))
    tool.set_defaults(func=cmd_tool)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SetupError as exc:
        print("async_lab: %s" % exc, file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(
            "async_lab: command failed (exit %s): %s" % (exc.returncode, " ".join(map(str, exc.cmd))), file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
