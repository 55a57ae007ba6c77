# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Benchmark of the concurrency lab, against a real prefork server.

1. Runs the four presets as experiments (the Run button's path: a queue job
   in the cpu channel) and prints, for each strategy, the measured speedup
   over the sequential baseline of the same run and measured ÷ theoretical.
2. Compares the await and background HTTP patterns on 20 × 200 ms I/O
   tasks: client-observed time to the answer, and to the work being done.

    .venv/bin/python bench/bench_lab.py            # ~3 min on 2 cores

The server gets 18 HTTP workers: the "16 × HTTP call" preset calls the
addon's own /async_lab/io endpoint 16 times at once, and each of those
calls occupies one HTTP worker while it waits. With fewer workers the
calls queue for a worker, and that preset measures the worker pool, not
the client's concurrency (try --workers 3 to see it).
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

from odoo_server import OdooServer, db_params, ensure_modules  # noqa: E402

PRESETS = ("io_sleep", "io_http", "cpu_gil", "cpu_nogil")
CHANNELS = "root:4,root.async_lab:4,root.async_lab.io:4,root.async_lab.cpu:2,root.async_lab.serial:1:sequential"


def call_kw(server, session, model, method, *args):
    resp = session.post(server.url + "/web/dataset/call_kw", json={
        "jsonrpc": "2.0", "method": "call",
        "params": {"model": model, "method": method, "args": list(args), "kwargs": {}},
    }, timeout=60)  # fmt: skip
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
    results = call_kw(server, session, "async_lab.experiment.result", "search_read",
                      [("experiment_id", "=", experiment_id)],
                      ["strategy", "wall_seconds", "speedup", "ideal", "efficiency", "verdict"])  # fmt: skip
    return experiment_id, results


def await_vs_background(server, session, tasks=20, ms=200):
    rows = []
    for strategy in ("sequential", "threads"):
        start = time.perf_counter()
        resp = session.post(server.url + "/async_lab/run", timeout=120, json={
            "workload": "io_sleep", "params": {"ms": ms}, "strategy": strategy, "tasks": tasks})  # fmt: skip
        elapsed = time.perf_counter() - start
        assert resp.status_code == 200, resp.text
        rows.append(("await (/async_lab/run, %s)" % strategy, elapsed, elapsed))
    start = time.perf_counter()
    resp = session.post(server.url + "/async_lab/jobs", timeout=60, json={
        "workload": "io_sleep", "params": {"ms": ms}, "count": tasks, "channel": "root.async_lab.io"})  # fmt: skip
    answered = time.perf_counter() - start
    assert resp.status_code == 202, resp.text
    pending = set(resp.json()["job_uuids"])
    while pending:
        for uuid in list(pending):
            if session.get(server.url + "/async_lab/jobs/" + uuid, timeout=30).json()["state"] == "done":
                pending.discard(uuid)
        time.sleep(0.05)
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
        server = OdooServer(args.conf, args.db, Path(tmp), workers=args.workers, max_cron_threads=1,
                            channels=CHANNELS)  # fmt: skip
        try:
            server.start()
            session = server.session()
            print("\nserver: %d HTTP workers, channels %s\n" % (args.workers, CHANNELS))
            header = "%-45s %-11s %9s %9s %7s %9s" % ("preset", "strategy", "wall (s)", "speedup", "ideal",
                                                      "meas/th")  # fmt: skip
            print(header)
            print("-" * len(header))
            ratios = []
            for key in args.presets.split(","):
                _id, results = run_preset(server, session, key)
                (name,) = [p["name"] for p in call_kw(server, session, "async_lab.experiment", "get_presets")
                           if p["key"] == key]  # fmt: skip
                for r in results:
                    ratio = r["speedup"] / r["ideal"] if r["ideal"] else 0.0
                    if r["strategy"] != "sequential" and r["ideal"] > 1:
                        ratios.append((name, r["strategy"], ratio))
                    print("%-45s %-11s %9.3f %8.2f× %7.0f %9.2f" % (
                        name[:45], r["strategy"], r["wall_seconds"], r["speedup"], r["ideal"], ratio))  # fmt: skip
                print("%-45s verdicts:" % "")
                for r in results:
                    print("%-45s   %s" % ("", r["verdict"]))
            short = [r for r in ratios if r[2] < 0.8]
            print("\nmeasured ÷ theoretical ≥ 0.8 for %d of %d strategies where theory predicts a speedup"
                  % (len(ratios) - len(short), len(ratios)))  # fmt: skip
            for name, strategy, ratio in short:
                print("  below: %s / %s: %.2f" % (name, strategy, ratio))

            print("\nawait vs background, 20 × 200 ms I/O tasks (client-observed):")
            print("%-42s %14s %14s" % ("pattern", "answer (s)", "work done (s)"))
            for label, answered, done in await_vs_background(server, session):
                print("%-42s %14.3f %14.3f" % (label, answered, done))
            print("\nmedian meas/th: %.2f" % statistics.median(r[2] for r in ratios) if ratios else "")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
