#!/usr/bin/env python3
# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""R4. Load: 64 users for 60 s on the read routes, with a burst running (locust, headless).

Run it with the project's venv, after ``make bootstrap``::

    .venv/bin/python bench/load.py                    # about 2 minutes
    .venv/bin/python bench/load.py --users 64 --seconds 30 --workers 3

1. locust gets a venv of its own, ``.dev/locust`` (its pins clash with
   Odoo's), created on the first run (``--locust-version``).
2. A bench database (``--db``, default ``async_lab_bench_load``) on the
   server of ``.dev/odoo.conf`` with async_lab installed; one prefork server on
   it (``--workers`` HTTP workers, one cron worker, queue_job's runner).
3. A burst of ``--burst`` ``io_sleep`` jobs is launched (``POST
   /async_lab/jobs``), then ``--users`` locust users (bench/locustfile.py) read
   ``/async_lab/whoami``, ``/async_lab/stats``, the dashboard's data call
   (``/async_lab/dashboard/data``, JSON-RPC) and ``/async_lab/jobs/<uuid>`` of
   that burst's jobs for ``--seconds``, sharing one admin session.
4. It prints requests, failures, p50 and p95 per route (locust's CSV), and
   checks afterwards that the process map's alive rows of the server are
   exactly its live processes (psutil), once a heartbeat has passed.
   The goal: 0 errors. A failure's line in the server log is printed too.
"""

# A benchmark script: it prints its figures on stdout.
# pylint: disable=print-used

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

# The integration tests' server helpers (tests/integration/odoo_server.py), shared by the benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from odoo_server import REPO, OdooServer, add_database_options, bench_database, connect, db_params, end_bench

LOCUST_VENV = REPO / ".dev" / "locust"
LOCUST = LOCUST_VENV / "bin" / "locust"
CHANNELS = "root:2,root.async_lab:2,root.async_lab.io:2,root.async_lab.cpu:1,root.async_lab.serial:1:sequential"


def ensure_locust(version):
    """locust in .dev/locust, created on demand (its pins clash with Odoo's)."""
    if LOCUST.exists():
        out = subprocess.run([LOCUST, "--version"], capture_output=True, text=True).stdout
        if version in out:
            return
    print("installing locust %s in %s" % (version, LOCUST_VENV), flush=True)
    python = shutil.which("python3.11") or shutil.which("python3")
    subprocess.run([python, "-m", "venv", LOCUST_VENV], check=True)
    subprocess.run([LOCUST_VENV / "bin" / "pip", "install", "-q", "locust==%s" % version], check=True)


def live_tree(master_pid):
    """PIDs of the master and its live children (zombies are dead)."""
    master = psutil.Process(master_pid)
    return {master_pid} | {c.pid for c in master.children() if c.status() != psutil.STATUS_ZOMBIE}


def alive_rows(conn, master_pid):
    with conn.cursor() as cr:
        cr.execute(
            "SELECT pid FROM async_lab_worker WHERE (master_pid = %s OR pid = %s) AND state = 'alive'",
            [master_pid, master_pid],
        )
        return {pid for (pid,) in cr.fetchall()}


def listen_overflows():
    """The kernel's count of connections dropped because a listen queue was
    full (system-wide, since boot)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        if header.startswith("TcpExt:"):
            return int(dict(zip(header.split(), values.split(), strict=True))["ListenOverflows"])
    return 0


def probe_late_request(port, delay):
    """Connect, wait ``delay`` s, then send a request: what a client starved
    of CPU does. Return what the client sees."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.connect()
    time.sleep(delay)
    try:
        conn.request("GET", "/web/health")
        return "HTTP %s" % conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return "%s: %s" % (type(exc).__name__, exc)
    finally:
        conn.close()


def read_stats(prefix):
    rows = {}
    with open("%s_stats.csv" % prefix) as fh:
        for row in csv.DictReader(fh):
            rows[row["Name"]] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p50": float(row["50%"] or 0),
                "p95": float(row["95%"] or 0),
                "rps": float(row["Requests/s"] or 0),
            }
    failures = []
    if os.path.exists("%s_failures.csv" % prefix):
        with open("%s_failures.csv" % prefix) as fh:
            failures = list(csv.DictReader(fh))
    return rows, failures


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_database_options(parser, "async_lab_bench_load")
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--burst", type=int, default=1000, help="io_sleep jobs running meanwhile")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an Odoo option of the server, e.g. limit_request=200",
    )
    parser.add_argument("--locust-version", default="2.47.0")
    parser.add_argument("--keep-logs", action="store_true")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    ensure_locust(args.locust_version)
    params = db_params(args.conf)
    bench_database(args.conf, params, args.db, args.update)
    tmp = Path(tempfile.mkdtemp(prefix="async_lab_load."))
    options = dict(log_level="info", **dict(opt.split("=", 1) for opt in args.option))
    server = OdooServer(
        args.conf, args.db, tmp, workers=args.workers, max_cron_threads=1, channels=CHANNELS, options=options
    )
    ok = False
    try:
        server.start()
        session = server.session()
        resp = session.post(
            server.url + "/async_lab/jobs",
            timeout=120,
            json={"workload": "io_sleep", "params": {"ms": 100}, "count": args.burst},
        )
        resp.raise_for_status()
        uuids = resp.json()["job_uuids"]
        prefix = tmp / "locust"
        env = dict(os.environ, ASYNC_LAB_SESSION=session.cookies["session_id"], ASYNC_LAB_JOB_UUIDS=",".join(uuids))
        overflows = listen_overflows()
        print(
            "%d users for %d s on %s (%d HTTP workers), burst of %d jobs running"
            % (args.users, args.seconds, server.url, args.workers, len(uuids)),
            flush=True,
        )
        subprocess.run(
            [
                LOCUST,
                "-f",
                REPO / "bench" / "locustfile.py",
                "--headless",
                "--users",
                str(args.users),
                "--spawn-rate",
                str(max(1, args.users // 4)),
                "--run-time",
                "%ds" % args.seconds,
                "--host",
                server.url,
                "--csv",
                prefix,
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            env=env,
            check=False,
            stdout=subprocess.DEVNULL,
        )
        overflows = listen_overflows() - overflows
        rows, failures = read_stats(prefix)
        print("%-16s %9s %8s %8s %8s %8s" % ("route", "requests", "errors", "req/s", "p50 ms", "p95 ms"))
        for name, row in rows.items():
            print(
                "%-16s %9d %8d %8.1f %8.0f %8.0f"
                % (name, row["requests"], row["failures"], row["rps"], row["p50"], row["p95"])
            )
        for failure in failures:
            print(
                "failure: %s %s x%s: %s"
                % (failure["Method"], failure["Name"], failure["Occurrences"], failure["Error"][:300])
            )
        errors = rows.get("Aggregated", {}).get("failures", 1)
        # The process map after the storm: alive rows == live processes.
        conn = connect(params, args.db)
        deadline = time.monotonic() + 30
        while True:
            live, alive = live_tree(server.pid), alive_rows(conn, server.pid)
            if live == alive or time.monotonic() > deadline:
                break
            time.sleep(1)
        conn.close()
        print(
            "process map: %d alive rows, %d live processes%s"
            % (
                len(alive),
                len(live),
                ""
                if live == alive
                else ": rows only %s, processes only %s" % (sorted(alive - live), sorted(live - alive)),
            )
        )
        print(
            "kernel: %d connections dropped on a full listen queue during the run (system-wide; Odoo's "
            "queue is 8 x workers = %d)" % (overflows, 8 * args.workers)
        )
        # Why a client can see "closed the connection without a response": a
        # prefork worker gives a connection ODOO_HTTP_SOCKET_TIMEOUT (2 s) to
        # send its request once accepted, then closes it unanswered.
        for delay in (0.5, 2.5):
            print("a request sent %.1f s after connecting: %s" % (delay, probe_late_request(server.port, delay)))
        time.sleep(0.5)
        log = server.log()
        for line in log.splitlines():
            if " ERROR " in line or "Traceback" in line:
                print("server log: %s" % line[:300])
        ok = errors == 0 and live == alive
        print("PASS" if ok else "FAIL")
    finally:
        end_bench(
            [server],
            params,
            [args.db],
            tmp,
            ok=ok,
            drop=args.drop,
            keep=args.keep_logs,
            what="server log, config and locust CSVs",
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
