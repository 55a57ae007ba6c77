# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Benchmark of the concurrency lab, against a real prefork server.

1. Runs the four presets as experiments (the Run button's path: a queue job
   in the cpu channel) and prints, for each strategy, the measured speedup
   over the sequential baseline of the same run, and measured ÷ theoretical
   against two theories (lib/theory.py): the *ideal* (N for I/O, the cores
   for processes, 1 for threads on GIL-held Python, the channel capacity for
   queue_job), and the *expected* speedup, the ideal once the costs measured
   in the same experiment count (the CPU part of each task, which threads
   and asyncio run in turns under one GIL; queue_job's dispatch, measured by
   the same fan-out of no-op jobs just before). The goal, >= 0.8, is
   checked against the expected speedup; both are printed.
2. Compares the await and background HTTP patterns on 20 × 200 ms I/O
   tasks: client-observed time to the answer, and to the work being done.

    .venv/bin/python bench/bench_lab.py            # ~3 min on 2 cores

The server gets 18 HTTP workers: the "16 × HTTP call" preset calls the
addon's own /async_lab/io endpoint 16 times at once, and each of those
calls occupies one HTTP worker while it waits. With fewer workers the
calls queue for a worker, and that preset measures the worker pool, not
the client's concurrency (try --workers 3 to see it).
"""

# A benchmark script: it prints its figures on stdout.
# pylint: disable=print-used

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

# The integration tests' server helpers (tests/integration/odoo_server.py), shared by the benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from odoo_server import REPO, OdooServer, db_params, ensure_modules

PRESETS = ("io_sleep", "io_http", "cpu_gil", "cpu_nogil")
#: measured ÷ theoretical speedup to reach
GOAL = 0.8
CHANNELS = "root:4,root.async_lab:4,root.async_lab.io:4,root.async_lab.cpu:2,root.async_lab.serial:1:sequential"


def call_kw(server, session, model, method, *args):
    resp = session.post(
        server.url + "/web/dataset/call_kw",
        json={
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"model": model, "method": method, "args": list(args), "kwargs": {}},
        },
        timeout=60,
    )
    data = resp.json()
    if "error" in data:
        raise RuntimeError(data["error"]["data"]["message"])
    return data["result"]


def run_preset(server, session, key, timeout=300):
    experiment_id = call_kw(server, session, "async_lab.experiment", "run_preset", key)["experiment_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (row,) = call_kw(server, session, "async_lab.experiment", "read", [experiment_id], ["state", "error"])
        if row["state"] in ("done", "failed"):
            break
        time.sleep(1)
    else:
        raise RuntimeError("experiment %s did not finish in %ss" % (key, timeout))
    if row["state"] == "failed":
        raise RuntimeError("experiment %s failed: %s" % (key, row["error"]))
    results = call_kw(
        server,
        session,
        "async_lab.experiment.result",
        "search_read",
        [("experiment_id", "=", experiment_id)],
        ["strategy", "wall_seconds", "speedup", "ideal", "expected", "efficiency", "verdict"],
    )
    return experiment_id, results


def warm_server(server, session, workers, timeout=120):
    """Bring the fresh server to a steady state before measuring.

    A prefork worker's first request on a database costs about half a
    second (routing map, session store, caches). A running server's workers
    are past it; a server started for the bench is not, and the first
    experiment would pay for it. So: a burst of no-op jobs (the runner's
    /queue_job/runjob calls) and as many concurrent /async_lab/io calls
    as there are workers, untimed.
    """
    resp = session.post(
        server.url + "/async_lab/jobs",
        timeout=60,
        json={"workload": "noop", "count": 3 * workers, "channel": "root.async_lab.io"},
    )
    assert resp.status_code == 202, resp.text
    wait_jobs_done(server, session, resp.json()["job_uuids"], timeout)

    def call(_index):
        requests.get(server.url + "/async_lab/io", params={"ms": 50}, cookies=session.cookies, timeout=30)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(call, range(workers)))


def wait_jobs_done(server, session, uuids, timeout):
    """Poll the jobs' status route until all are done; return those still not done after ``timeout`` s."""
    pending = set(uuids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for uuid in list(pending):
            if session.get(server.url + "/async_lab/jobs/" + uuid, timeout=30).json()["state"] == "done":
                pending.discard(uuid)
        if pending:
            time.sleep(0.05)
    return pending


def await_vs_background(server, session, tasks=20, ms=200):
    rows = []
    for strategy in ("sequential", "threads"):
        start = time.perf_counter()
        resp = session.post(
            server.url + "/async_lab/run",
            timeout=120,
            json={"workload": "io_sleep", "params": {"ms": ms}, "strategy": strategy, "tasks": tasks},
        )
        elapsed = time.perf_counter() - start
        assert resp.status_code == 200, resp.text
        rows.append(("await (/async_lab/run, %s)" % strategy, elapsed, elapsed))
    start = time.perf_counter()
    resp = session.post(
        server.url + "/async_lab/jobs",
        timeout=60,
        json={"workload": "io_sleep", "params": {"ms": ms}, "count": tasks, "channel": "root.async_lab.io"},
    )
    answered = time.perf_counter() - start
    assert resp.status_code == 202, resp.text
    left = wait_jobs_done(server, session, resp.json()["job_uuids"], timeout=120)
    assert not left, "background jobs not done after 120 s: %s" % sorted(left)
    rows.append(("background (/async_lab/jobs + poll)", answered, time.perf_counter() - start))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="async_lab_bench_lab", help="bench database (created if missing)")
    parser.add_argument("--conf", default=str(REPO / ".dev" / "odoo.conf"))
    parser.add_argument("--workers", type=int, default=18)
    parser.add_argument("--presets", default=",".join(PRESETS))
    args = parser.parse_args()
    ensure_modules(args.conf, db_params(args.conf), args.db, ["async_lab"], update=["async_lab"])
    with tempfile.TemporaryDirectory() as tmp:
        server = OdooServer(args.conf, args.db, Path(tmp), workers=args.workers, max_cron_threads=1, channels=CHANNELS)
        try:
            server.start()
            session = server.session()
            warm_server(server, session, args.workers)
            print("\nserver: %d HTTP workers, channels %s\n" % (args.workers, CHANNELS))
            header = "%-45s %-11s %9s %9s %6s %8s %9s %8s" % (
                "preset",
                "strategy",
                "wall (s)",
                "speedup",
                "ideal",
                "m/ideal",
                "expected",
                "m/exp",
            )
            print(header)
            print("-" * len(header))
            ratios = []  # (preset, strategy, measured / ideal, measured / expected)
            for key in args.presets.split(","):
                _id, results = run_preset(server, session, key)
                (name,) = [
                    p["name"]
                    for p in call_kw(server, session, "async_lab.experiment", "get_presets")
                    if p["key"] == key
                ]
                for r in results:
                    vs_ideal = r["speedup"] / r["ideal"] if r["ideal"] else 0.0
                    vs_expected = r["speedup"] / r["expected"] if r["expected"] else 0.0
                    if r["strategy"] != "sequential" and r["ideal"] > 1:
                        ratios.append((name, r["strategy"], vs_ideal, vs_expected))
                    print(
                        "%-45s %-11s %9.3f %8.2f× %6.0f %8.2f %8.2f× %8.2f"
                        % (
                            name[:45],
                            r["strategy"],
                            r["wall_seconds"],
                            r["speedup"],
                            r["ideal"],
                            vs_ideal,
                            r["expected"],
                            vs_expected,
                        )
                    )
                print("%-45s verdicts:" % "")
                for r in results:
                    print("%-45s   %s" % ("", r["verdict"]))
            for label, column in (("ideal", 2), ("expected", 3)):
                short = [r for r in ratios if r[column] < GOAL]
                print(
                    "\nmeasured ÷ %s ≥ %.1f for %d of the %d strategies whose ideal is a speedup (median %.2f)"
                    % (
                        label,
                        GOAL,
                        len(ratios) - len(short),
                        len(ratios),
                        statistics.median(r[column] for r in ratios) if ratios else 0.0,
                    )
                )
                for row in short:
                    print("  below: %s / %s: %.2f" % (row[0], row[1], row[column]))

            print("\nawait vs background, 20 × 200 ms I/O tasks (client-observed):")
            print("%-42s %14s %14s" % ("pattern", "answer (s)", "work done (s)"))
            for label, answered, done in await_vs_background(server, session):
                print("%-42s %14.3f %14.3f" % (label, answered, done))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
