# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What a capacity setting does to users, measured (the "user impact" preset).

The same server twice (3 HTTP workers), the same burst (30 jobs of 1 s of
I/O on the io channel) and the same probe (10 small authenticated reads a
second, the web client's JSON-RPC read of the user's name), first with the
root channel at workers - 1 = 2, then at 1, then at workers = 3 (every worker
may run a job). For each: the probe's p50/p95
at rest and during the burst, their ratio, the share of HTTP worker time
the jobs held, and how long the burst took. The baseline of each row is its
own probe at rest, measured in the same run just before the burst.

    .venv/bin/python bench/bench_impact.py          # ~3 min on 2 cores
"""

# A benchmark script: it prints its figures on stdout.
# pylint: disable=print-used

import argparse
import sys
import tempfile
import time
from pathlib import Path

# The integration tests' server helpers (tests/integration/odoo_server.py), shared by the benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from odoo_server import REPO, OdooServer, db_params, end_bench, ensure_modules


def channels(root):
    """The dev channels, with root, async_lab and io at ``root``."""
    return ",".join(
        ["root:%d" % root, "root.async_lab:%d" % root, "root.async_lab.io:%d" % root]
        + ["root.async_lab.cpu:1", "root.async_lab.serial:1:sequential"]
    )


def measure(conf, db, workers, root, jobs, rate, tmp):
    server = OdooServer(conf, db, Path(tmp), workers=workers, max_cron_threads=1, channels=channels(root))
    ok = False
    try:
        server.start()
        time.sleep(8)  # the job runner starts 5 s after the server
        session = server.session()
        resp = session.post(
            server.url + "/async_lab/impact",
            json={"params": {"ms": 1000}, "tasks": jobs, "rate": rate, "channel": "root.async_lab.io"},
            timeout=30,
        )
        resp.raise_for_status()
        url = server.url + resp.json()["status_url"]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            data = session.get(url, timeout=30).json()
            if data["state"] not in ("queued", "running"):
                break
            time.sleep(1)
        if data["state"] != "done":
            raise RuntimeError("the user-impact run ended %s: %s" % (data["state"], data.get("error")))
        ok = True
        return data["impact"]
    finally:
        end_bench(server, db_params(conf), db, tmp, ok=ok)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="async_lab_bench_impact", help="bench database (created if missing)")
    parser.add_argument("--conf", default=str(REPO / ".dev" / "odoo.conf"))
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--rate", type=int, default=10)
    args = parser.parse_args()
    ensure_modules(args.conf, db_params(args.conf), args.db, ["async_lab"], update=["async_lab"])
    rows = []
    # workers - 1 and 1, the pair; and workers, the advisor's critical case, for comparison.
    for root in (args.workers - 1, 1, args.workers):
        tmp = tempfile.mkdtemp(prefix="async_lab_bench_impact_")
        rows.append((root, measure(args.conf, args.db, args.workers, root, args.jobs, args.rate, tmp)))
    print("\n%d HTTP workers, %d jobs of 1 s on root.async_lab.io, probe %d/s\n" % (args.workers, args.jobs, args.rate))
    header = "%-6s %-15s %-15s %-9s %-13s %-9s %-9s" % (
        "root",
        "at rest p50/p95",
        "burst p50/p95",
        "p95 ×",
        "workers held",
        "burst s",
        "requests",
    )
    print(header)
    print("-" * len(header))
    for root, f in rows:
        print(
            "%-6s %-15s %-15s %-9s %-13s %-9s %-9s"
            % (
                "%d" % root,
                "%.0f / %.0f ms" % (f["idle_p50_ms"], f["idle_p95_ms"]),
                "%.0f / %.0f ms" % (f["burst_p50_ms"], f["burst_p95_ms"]),
                "%.1f×" % f["p95_ratio"] if f["p95_ratio"] else "–",
                "%.0f %%" % (100 * f["workers_held"]),
                "%.1f" % f["burst_seconds"] if f.get("burst_seconds") else "–",
                "%d (%d err)" % (f["requests"], f["errors"]),
            )
        )


if __name__ == "__main__":
    main()
