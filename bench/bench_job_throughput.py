#!/usr/bin/env python3
# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""P2. No-op jobs per second through the real job runner: bursts against bare jobs.

Run it with the project's venv, after ``make bootstrap``::

    .venv/bin/python bench/bench_job_throughput.py

1. It creates, or reuses, a bench database on the server of ``.dev/odoo.conf``
   (``--db``, default ``async_lab_bench_jobs``) with async_lab installed and
   no demo data. A reused one is updated to this checkout (``-u async_lab``)
   unless ``--no-update``.
2. It starts one prefork server on it with ``tests/integration/odoo_server.py``
   (``--workers`` HTTP workers, no cron worker, queue_job's runner, the
   channels of ``--channels``) on free ports, logging at ``--log-level``.
3. Two ways to enqueue ``--jobs`` no-op jobs on the same channel, same
   priority (10), same user (admin):

   BURSTS  one ``POST /async_lab/jobs`` (the JSON API, logged in as admin):
           an ``async_lab.burst`` of the ``noop`` workload created and
           launched in one request;
   BARE    ``env["queue.job"].with_delay(channel=...)._test_job()``, queue_job's
           own trivial test method, N times in one transaction, from a
           registry loaded in this process (what ``odoo shell`` would do,
           without paying its start-up in every round).

4. Rounds alternate BURSTS, BARE, BURSTS, BARE... (after one unmeasured
   warm-up of each, which also waits for the runner to be ready). A round
   ends when all its jobs are done; it fails on a failed job or after
   ``--timeout`` seconds.
5. Figures come from the ``queue_job`` rows of the round:
   jobs/s = N / (max(date_done) - min(date_created)), end to end, enqueueing
   included; and "run phase" jobs/s = N / (max(date_done) - min(date_started)),
   the runner and the workers only. (A burst builds all its jobs, which
   dates them, then stores them; bare jobs are built and stored one by one.
   Either way the span includes the storing.) It prints each round, the medians and
   the ratio BURSTS / BARE of the end-to-end medians. The goal is >= 0.95.

Every process it starts is stopped at the end, also on Ctrl-C. It writes
nothing in the repository (server config and log go to a temporary folder,
kept with ``--keep-logs`` or when something fails). The jobs and bursts it
creates stay in the bench database (a few thousand rows a run); ``--drop``
drops the database at the end.
"""

# A benchmark script: it prints its figures on stdout.
# pylint: disable=print-used

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The integration tests' server helpers (tests/integration/odoo_server.py), shared by the benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from odoo_server import (
    OdooServer,
    add_database_options,
    bench_database,
    connect,
    db_params,
    end_bench,
    interrupt_on_sigterm,
    load_registry,
    run_bench,
)

GOAL = 0.95
ADMIN_UID = 2
WORKLOAD = {"workload": "noop", "params": {}}
DEFAULT_CHANNELS = "root:3,root.async_lab:3,root.async_lab.io:3,root.async_lab.cpu:1,root.async_lab.serial:1:sequential"
FINISHED = ("done", "failed", "cancelled")
SIDES = ("bursts", "bare")


# -- enqueueing ---------------------------------------------------------------------------
def enqueue_bursts(server, session, channel, count):
    body = dict(WORKLOAD, count=count, channel=channel)
    resp = session.post(server.url + "/async_lab/jobs", json=body, timeout=120)
    if resp.status_code != 202:
        raise RuntimeError("POST /async_lab/jobs answered %s: %s" % (resp.status_code, resp.text[:500]))
    return resp.json()["job_uuids"]


def enqueue_bare(registry, channel, count):
    from odoo import api

    with registry.cursor() as cr:
        env = api.Environment(cr, ADMIN_UID, {})
        jobs = env["queue.job"]
        uuids = [jobs.with_delay(channel=channel)._test_job().uuid for _i in range(count)]
        # The benchmark's own cursor: the job runner sees the jobs only once committed.
        # pylint: disable-next=invalid-commit
        cr.commit()
    return uuids


# -- measuring ------------------------------------------------------------------------------
def wait_finished(cr, uuids, timeout):
    deadline = time.monotonic() + timeout
    while True:
        cr.execute("SELECT count(*) FROM queue_job WHERE uuid = ANY(%s) AND state IN %s", [uuids, FINISHED])
        if cr.fetchone()[0] == len(uuids):
            return
        if time.monotonic() > deadline:
            cr.execute("SELECT state, count(*) FROM queue_job WHERE uuid = ANY(%s) GROUP BY 1", [uuids])
            raise RuntimeError("jobs not finished after %ss: %s" % (timeout, dict(cr.fetchall())))
        time.sleep(0.1)


def figures(cr, uuids):
    cr.execute(
        """SELECT count(*), count(*) FILTER (WHERE state = 'done'), count(DISTINCT worker_pid),
                  extract(epoch FROM max(date_done) - min(date_created)),
                  extract(epoch FROM max(date_done) - min(date_started)),
                  sum(extract(epoch FROM date_done - date_started)) / count(*)
             FROM queue_job WHERE uuid = ANY(%s)""",
        [uuids],
    )
    total, done, pids, span, run, mean_run = cr.fetchone()
    if done != total:
        cr.execute("SELECT state, count(*) FROM queue_job WHERE uuid = ANY(%s) GROUP BY 1", [uuids])
        raise RuntimeError("not every job is done: %s" % dict(cr.fetchall()))
    return {
        "jobs": total,
        "jobs_per_s": total / span,
        "run_jobs_per_s": total / run,
        "span_s": span,
        "mean_job_ms": 1000 * mean_run,
        "pids": pids,
    }


def run_round(side, ctx, args):
    if side == "bursts":
        uuids = enqueue_bursts(ctx["server"], ctx["session"], args.channel, ctx["count"])
    else:
        uuids = enqueue_bare(ctx["registry"], args.channel, ctx["count"])
    if len(uuids) != ctx["count"]:
        raise RuntimeError("%s enqueued %d jobs, not %d" % (side, len(uuids), ctx["count"]))
    wait_finished(ctx["cr"], uuids, args.timeout)
    return figures(ctx["cr"], uuids)


# -- main -----------------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="No-op jobs/s through the real queue_job runner: async_lab bursts vs bare with_delay "
        "jobs of queue_job's _test_job (one prefork server, alternating rounds). Goal: ratio >= %.2f." % GOAL,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_database_options(parser, "async_lab_bench_jobs")
    parser.add_argument("--jobs", type=int, default=300, help="jobs per round (a burst holds at most 1000)")
    parser.add_argument("--rounds", type=int, default=4, help="measured rounds per side")
    parser.add_argument("--warmup-jobs", type=int, default=30, help="jobs of the unmeasured warm-up of each side")
    parser.add_argument("--channel", default="root.async_lab.io", help="channel of every job")
    parser.add_argument("--channels", default=DEFAULT_CHANNELS, help="queue_job channels of the server")
    parser.add_argument("--workers", type=int, default=4, help="HTTP workers (they run the jobs)")
    parser.add_argument("--log-level", default="warn", help="log_level of the server")
    parser.add_argument("--timeout", type=float, default=180, help="seconds a round may take")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server's config and log")
    args = parser.parse_args(argv)
    if not 1 <= args.jobs <= 1000 or not 1 <= args.warmup_jobs <= 1000:
        parser.error("--jobs and --warmup-jobs must be between 1 and 1000")
    if not 1 <= args.rounds <= 50 or not 1 <= args.workers <= 32:
        parser.error("--rounds must be in 1..50 and --workers in 1..32")
    if not args.conf.exists():
        parser.error("no Odoo config at %s: run `make bootstrap` first" % args.conf)
    return args


def report(rows, args):
    print(
        "\n%-5s %-7s %6s %9s %9s %8s %9s %5s"
        % ("round", "side", "jobs", "jobs/s", "run j/s", "span s", "job ms", "pids")
    )
    for i, (side, fig) in enumerate(rows, 1):
        print(
            "%-5d %-7s %6d %9.1f %9.1f %8.2f %9.1f %5d"
            % (
                i,
                side,
                fig["jobs"],
                fig["jobs_per_s"],
                fig["run_jobs_per_s"],
                fig["span_s"],
                fig["mean_job_ms"],
                fig["pids"],
            )
        )
    by_side = {side: [fig for s, fig in rows if s == side] for side in SIDES}
    med = {
        key: {side: statistics.median(f[key] for f in by_side[side]) for side in SIDES}
        for key in ("jobs_per_s", "run_jobs_per_s", "mean_job_ms")
    }
    pairs = [b["jobs_per_s"] / a["jobs_per_s"] for b, a in zip(by_side["bursts"], by_side["bare"], strict=True)]
    ratio = med["jobs_per_s"]["bursts"] / med["jobs_per_s"]["bare"]
    run_ratio = med["run_jobs_per_s"]["bursts"] / med["run_jobs_per_s"]["bare"]
    print(
        "\nmedian jobs/s end to end: bursts %.1f, bare %.1f" % (med["jobs_per_s"]["bursts"], med["jobs_per_s"]["bare"])
    )
    print(
        "median jobs/s run phase:  bursts %.1f, bare %.1f (ratio %.3f)"
        % (med["run_jobs_per_s"]["bursts"], med["run_jobs_per_s"]["bare"], run_ratio)
    )
    print(
        "median job run time: bursts %.1f ms, bare %.1f ms" % (med["mean_job_ms"]["bursts"], med["mean_job_ms"]["bare"])
    )
    print("ratio of each pair of rounds: %s" % ", ".join("%.3f" % r for r in pairs))
    print(
        "RATIO bursts/bare (end-to-end medians): %.3f  goal >= %.2f: %s"
        % (ratio, GOAL, "met" if ratio >= GOAL else "NOT met")
    )
    return ratio


def main(argv=None):
    args = parse_args(argv)
    params = db_params(args.conf)
    bench_database(args.conf, params, args.db, args.update)
    interrupt_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="async_lab_bench_jobs."))
    server = OdooServer(
        args.conf,
        args.db,
        tmp,
        workers=args.workers,
        max_cron_threads=0,
        channels=args.channels,
        options={"log_level": args.log_level},
    )
    conn = registry = None
    ok = False
    try:
        registry = load_registry(args.conf, args.db)
        server.start()
        conn = connect(params, args.db)
        ctx = {"server": server, "session": server.session(), "registry": registry, "cr": conn.cursor()}
        print(
            "server %s (master %s, db %s): %d HTTP workers, channels %s; %d jobs per round on %s, "
            "%d rounds per side"
            % (server.url, server.pid, args.db, args.workers, args.channels, args.jobs, args.channel, args.rounds),
            flush=True,
        )
        ctx["count"] = args.warmup_jobs
        for side in SIDES:  # also waits for the runner, which starts a few seconds late
            run_round(side, ctx, args)
        ctx["count"] = args.jobs
        rows = []
        for _i in range(args.rounds):
            for side in SIDES:
                time.sleep(1)  # let the previous round's last commits and notifications settle
                fig = run_round(side, ctx, args)
                rows.append((side, fig))
                print(
                    "round %d %-6s %7.1f jobs/s  (run phase %.1f jobs/s)"
                    % (len(rows), side, fig["jobs_per_s"], fig["run_jobs_per_s"]),
                    flush=True,
                )
        report(rows, args)
        ok = True
    finally:
        if conn is not None:
            conn.close()
        if registry is not None:
            registry.delete(args.db)
        end_bench([server], params, [args.db], tmp, ok=ok, drop=args.drop, keep=args.keep_logs)
    return 0


if __name__ == "__main__":
    run_bench(main)
